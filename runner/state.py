"""The state store: SQLite (WAL, synchronous=FULL; NORMAL only for deferred transactions), the job state
machine, the pay-once write-ahead rule.

Only this module writes SQL. Tables: runs, jobs (one row per job hash), run_jobs (which jobs a run
planned, under which key), attempts (one row per paid submission), events (append-only).

The rule that makes gridrun pay once lives in `begin_submit`: the attempt and its idempotency key are
committed before the caller may send the create request.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import functools
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

from . import bugs
from .errors import LockError, NotRecordedError, RunStartingError, StateError, StateWriteError
from .jobs import COST_FACTORS, KEY_IGNORED, BilledAbove, Billing
from .limits import file_size_fix, file_size_limit, files_ran_out, open_files_fix
from .outputs import (
    DIGESTS_NAME, INODES_FIX, NOFOLLOW, Digests, atomic_write, gridrun_sidecar, holds_take, inodes_out, left_by_runs, manifest_kept_path,
    superseded_dir, take_path, unreadable_why, write_problem,
)
from .records import (  # noqa: F401 (re-exported)
    CACHED, EARLIER, MADE, NOT_COPIED, ORIGINS, SIMULATOR_ELSEWHERE, EarlierBilled, EarlierTake, Failures, JobRecord, RunRecord, RunSummary, Snapshot, as_keyed,
    NEARLY_FULL, billing_of, job_record, local_time, run_record, typed_values,
)
from .terminal import runs_it_first, typed, visible



class Following(NamedTuple):
    """A job's row as following it needs it (`Store.following`)."""

    provider_id: str | None
    submitted_at: float | None
    attempt: int
    idempotency_key: str | None
    attempt_ended_at: float | None = None  # when that attempt ended (settled, or found unknown)
    attempt_started_at: float | None = None  # when that attempt was committed: its key sent no sooner
    cost_micros: int | None = None  # what its render counted when its completion was first seen (None before)
    completed_at: float | None = None  # when its render was seen completed (None before)

class JobState(str, enum.Enum):
    PLANNED = "planned"          # known, never submitted (or a submission proven never to have reached the provider)
    SUBMITTING = "submitting"    # intent committed; the create request may be in flight
    SUBMITTED = "submitted"      # the provider accepted it and gave an id; queued there
    RUNNING = "running"          # the provider is rendering it
    DOWNLOADING = "downloading"  # completed at the provider; the file is being fetched
    DONE = "done"                # the file is on disk, verified
    FAILED = "failed"            # the provider said it failed
    REJECTED = "rejected"        # refused before the provider accepted it: nothing paid
    UNKNOWN = "unknown"          # the create may have reached the provider; outcome not known
    EXPIRED = "expired"          # completed, but its output URL is gone and could not be refreshed
    CANCELLED = "cancelled"      # cancelled at the provider: on request (`gridrun cancel`), or by another
                                 # (`CANCELLED_ELSEWHERE`)

    def __str__(self) -> str:
        return self.value


S = JobState
# The reason of the reset a run makes to send a job again after the provider failed its render.
FAILURE_RETRY = "failure retry"
# Ends the error of an `expired` job whose video the provider no longer has (forgotten, HTTP 404 once more): no
# fresh URL is to be had, only `gridrun retry` renders it again, and pays. Other expired jobs (a provider that gave
# no fresh URL) are asked again by a plain run, at no cost.
GONE_AT_PROVIDER = "`gridrun retry` sends the job again (pays again)"


def gone_at_provider(state: str, error: str | None) -> bool:
    """Whether a job in `state` with `error` is an expired one whose video the provider no longer has."""
    return state == S.EXPIRED.value and bool(error) and GONE_AT_PROVIDER in str(error)

# Ends the error of an `expired` job whose fresh GET handed back no new URL (the one that expired once more, past its
# `expires_at` or with none given, or another one whose `expires_at` had passed): the provider does not renew its
# links, so asking again is no way to the video. The same URL handed back before its `expires_at` is not one: the
# provider keeps a URL until it expires, and the file host's refusal of it may pass.
# A plain run still asks once more, at no cost (a provider that renews later hands it over then), but `plan`,
# `status` and a run's next steps name `gridrun retry`, paid, as the way. Where a fresh GET did give a new URL
# that failed too, the job is expired as before, and asking again is fair.
NO_FRESH_URL = "the provider gave no fresh URL, only the one that expired"

# In the error of an `expired` job whose URL the file host refused while the provider, asked again, handed back the
# same URL with an `expires_at` still to come: followed by that time (`records.local_time`). Until then a plain run
# asks again, at no cost; after it, the provider's answer is an expired URL, and `gridrun retry` renders it again.
SAME_URL_UNTIL = "the provider handed back the same URL, valid by its expiry time until "


def same_url_until(state: str, error: str | None) -> str | None:
    """The expiry time (local, as written) of the URL an `expired` job's error says the provider keeps handing back
    (`SAME_URL_UNTIL`), or None."""
    if state != S.EXPIRED.value or not error or SAME_URL_UNTIL not in error:
        return None
    return error.split(SAME_URL_UNTIL, 1)[1].split(" (", 1)[0]


def no_fresh_url(state: str, error: str | None) -> bool:
    """Whether a job in `state` with `error` is an expired one the provider gave no fresh URL for (`NO_FRESH_URL`)."""
    return state == S.EXPIRED.value and bool(error) and NO_FRESH_URL in str(error)

# What the note of a job of unknown outcome says once a lookup found that the provider kept no request log to
# find its create in (none at all, or one that records no idempotency keys), in the words each such note has had.
# One answer (a 404 from a gateway in a bad moment is one too) is no proof the provider never will have one: a
# plain run asks again, at no cost; `plan`, `status` and a run's next steps say gridrun could not check when it
# last asked.
NO_REQUEST_LOG = "no request log to look it up in"


# What follows for a job of unknown outcome with no video id: a plain run looks it up by its key in the provider's
# request log first, at no cost, and collects it if it was made; only then is sending it again worth its risk.
UNKNOWN_NEXT = ("`gridrun run` looks it up in the provider's request log (no cost) and collects it if it was made; "
                "`gridrun retry --unknown` re-submits it if still not found (may pay twice)")
# How an older gridrun, which did not look such a job up first, ended its error: to re-submit it.
_UNKNOWN_RESUBMITS = ". `gridrun retry --unknown` re-submits (may pay twice)"


def advised_now(state: str, error: str, provider_id: str | None) -> str:
    """A job's recorded `error` with the advice an older gridrun ended it with said as this one advises: a job of
    unknown outcome with no video id is looked up by a plain run first (`UNKNOWN_NEXT`), not re-submitted. What
    went before the advice (the provider's own message) is kept as it is; any other error is returned as it is."""
    if state != S.UNKNOWN.value or provider_id or not error.endswith(_UNKNOWN_RESUBMITS):
        return error
    return f"{error[:-len(_UNKNOWN_RESUBMITS)]}. {UNKNOWN_NEXT}"


def no_request_log(state: str, error: str | None) -> bool:
    """Whether a job in `state` with `error` is one of unknown outcome that the last lookup could not settle: the
    provider was found then to have no request log (`NO_REQUEST_LOG`)."""
    return state == S.UNKNOWN.value and bool(error) and NO_REQUEST_LOG in str(error)


IN_FLIGHT = frozenset({S.SUBMITTING, S.SUBMITTED, S.RUNNING, S.DOWNLOADING})
FINAL = frozenset({S.DONE, S.FAILED, S.REJECTED, S.UNKNOWN, S.EXPIRED, S.CANCELLED})
ENDED_BADLY = frozenset(s.value for s in FINAL if s is not S.DONE)
"""The final states of a job that ended without its video, whose time of ending a snapshot reads (`ended_at`)."""
# The states of a job whose re-render (--force, retry of a done job) is still to come: its earlier video stays at
# its path, the job's take, until a new one arrives (`Store._earlier_takes`).
_REDOING = frozenset({S.PLANNED, *IN_FLIGHT, S.UNKNOWN})

_ALLOWED: dict[JobState, frozenset[JobState]] = {
    S.PLANNED: frozenset({S.SUBMITTING}),
    S.SUBMITTING: frozenset({S.SUBMITTED, S.RUNNING, S.DOWNLOADING, S.FAILED, S.REJECTED, S.UNKNOWN, S.PLANNED}),
    # ... -> UNKNOWN: the provider no longer knows the video (see options.GONE_AFTER)
    S.SUBMITTED: frozenset({S.RUNNING, S.DOWNLOADING, S.FAILED, S.CANCELLED, S.UNKNOWN}),
    S.RUNNING: frozenset({S.DOWNLOADING, S.FAILED, S.CANCELLED, S.UNKNOWN}),
    S.DOWNLOADING: frozenset({S.DONE, S.EXPIRED, S.FAILED}),
    S.DONE: frozenset({S.PLANNED, S.DOWNLOADING}),
    S.FAILED: frozenset({S.PLANNED}),
    S.REJECTED: frozenset({S.PLANNED}),
    S.UNKNOWN: frozenset({S.PLANNED, S.SUBMITTED, S.RUNNING, S.DOWNLOADING, S.FAILED}),
    S.EXPIRED: frozenset({S.PLANNED, S.DOWNLOADING}),
    S.CANCELLED: frozenset({S.PLANNED}),
}

# Attempt states that may have been paid for and are not settled: they count against the budget reserve.
# The error `Store.abandon_attempt` leaves on an attempt of unknown outcome that `retry --unknown` sent again: its
# video lost by the provider (`Executor` names the video: "lost by the provider: video X; sent again (retry
# --unknown)"), or no request log to look it up in. Such an attempt may have been billed, never recorded so.
ABANDONED_LOST_SUFFIX = "; sent again (retry --unknown)"
ABANDONED_NEVER_KNOWN = "retry --unknown: outcome never known; sent again"

_RESERVING = (S.SUBMITTING.value, S.SUBMITTED.value, S.RUNNING.value, S.DOWNLOADING.value, S.UNKNOWN.value)


# The state's meta row that keeps, for a job, the attempt `void_attempt` voided and its key, where an earlier gridrun
# made the key without the salt: `voided-key:<job id>` -> [attempt, key], until `begin_submit` sends it again.
VOIDED_KEY = "voided-key:"
# The state's meta row that keeps, for a job not planned (done, say) that `skip_attempts` numbered above an attempt a
# state lost sent under the key part adopted, the floor of its attempts: `attempt-floor:<job id>` -> n. Its next
# attempt (`begin_submit`, a `run --force`) is numbered above it, while the job's own `attempts` stays its take's.
ATTEMPT_FLOOR = "attempt-floor:"


def idempotency_key(job_hash: str, attempt: int, salt: str) -> str:
    """The key sent with attempt `attempt` of a job, in the state whose `salt` it is (`Store.key_salt`): stable
    across crashes, new for each paid retry, and the state's own, so that two states asking for the same request
    (manifests with a `state_dir:` each) never attach to, cancel or bill each other's renders at the provider.
    Short ASCII: the job's hash first (a provider's log names the job), the attempt last. An attempt keeps the
    key it was recorded with (`attempts`), whatever the salt: one an earlier gridrun sent has none."""
    return f"gridrun-{job_hash[:24]}-{salt}-{attempt}"


def key_part_digest(salt: str) -> str:
    """What the output folder's lock records of the key part (`Store.key_salt`) of the state whose run took it
    (`key_part`): enough for `gridrun recover` to tell this state's sidecars from another's (a teammate's renders
    brought by `git pull`, of a run of the same number). The lock records the part itself too (`key_part_value`,
    not secret: every idempotency key sent and every sidecar carries it), read where the digest alone tells
    nothing: a state lost before any video of its runs was downloaded."""
    return hashlib.sha256(f"gridrun-key-part:{salt}".encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------

_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []
migration = _MIGRATIONS.append


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            manifest_name TEXT NOT NULL,
            manifest_path TEXT NOT NULL,
            manifest_copy TEXT,
            outputs_dir TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            axes TEXT NOT NULL DEFAULT '[]',
            started_at REAL NOT NULL,
            ended_at REAL,
            status TEXT NOT NULL,
            budget_micros INTEGER,
            pid INTEGER,
            host TEXT,
            argv TEXT
        );
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            key TEXT NOT NULL,
            sweep TEXT,
            vals TEXT NOT NULL,
            params TEXT NOT NULL,
            request TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL,
            output_path TEXT NOT NULL,
            cost_estimate_micros INTEGER NOT NULL,
            cost_micros INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            provider_id TEXT,
            url TEXT,
            expires_at REAL,
            error TEXT,
            sha256 TEXT,
            width INTEGER,
            height INTEGER,
            duration REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            submitted_at REAL,
            completed_at REAL,
            downloaded_at REAL,
            done_run_id INTEGER
        );
        CREATE INDEX jobs_state ON jobs(state);
        CREATE TABLE run_jobs (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            key TEXT NOT NULL,
            position INTEGER NOT NULL,
            cached_from_run INTEGER,
            PRIMARY KEY (run_id, job_id)
        );
        CREATE INDEX run_jobs_key ON run_jobs(run_id, key);
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            n INTEGER NOT NULL,
            run_id INTEGER,
            idempotency_key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            provider_id TEXT,
            estimate_micros INTEGER NOT NULL,
            billed_micros INTEGER,
            started_at REAL NOT NULL,
            ended_at REAL,
            error TEXT,
            UNIQUE (job_id, n)
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            run_id INTEGER,
            job_id INTEGER,
            kind TEXT NOT NULL,
            detail TEXT
        );
        """
    )


@migration
def m002_billed_run(db: sqlite3.Connection) -> None:
    # The run that saw an attempt billed (its render completed, or failed and charged): a run's spending is
    # what it sent and what it followed that an earlier run sent, as its budget counts it.
    db.execute("ALTER TABLE attempts ADD COLUMN billed_run_id INTEGER")


@migration
def m003_reset_from(db: sqlite3.Connection) -> None:
    # What a job was before a reset (--force, retry) made it plannable, until its new attempt reaches the
    # provider: a re-run that never left (a kill, no connection) puts the job back as it was.
    db.execute("ALTER TABLE jobs ADD COLUMN reset_from TEXT")


@migration
def m004_run_final(db: sqlite3.Connection) -> None:
    # Each job of a run as the run left it (state, error, cost, attempts, ids, times), written when it ends: a
    # later run moves the shared job on, and the earlier run's report and comparisons must not show that.
    db.execute("ALTER TABLE run_jobs ADD COLUMN final TEXT")


@migration
def m005_run_final_money(db: sqlite3.Connection) -> None:
    # A run's money as it left it ({"spent", "reserved"} in micro-USD), written when it ends: a later run that
    # sees its jobs billed or settled moves the figures on, and the earlier run's report must show them as
    # its jobs are shown (`final`).
    db.execute("ALTER TABLE runs ADD COLUMN final_money TEXT")


@migration
def m006_events_index(db: sqlite3.Connection) -> None:
    # A job's resets (its last reset, its failure retries) are read once per job when a run resumes: without an
    # index each read scans every event of every run. Partial: only the few reset events are in it, so the
    # many other events a run writes (several a job) cost no index upkeep (0.2-0.3 ms of CPU a job).
    db.execute(f"CREATE INDEX events_resets ON events(job_id) WHERE {_RESET_KINDS}")


# The events `events_resets` holds; a query that reads it repeats this term word for word, which is how
# SQLite knows the index covers it.
_RESET_KINDS = "kind IN ('reset', 'reset-undone', 'voided')"


@migration
def m007_status_indexes(db: sqlite3.Connection) -> None:
    # `status` (and each `--watch` reading, every 2 s) reads why the latest run stops and when each of its jobs
    # ended: without indexes each read scanned every event of every run (5.1 ms at 41,000 events, 0.2 with
    # them). Partial, as `events_resets`: a few run-stopping events, and one a job as it ends, cost little upkeep.
    db.execute("CREATE INDEX events_stops ON events(run_id) WHERE kind='run-stopping'")
    db.execute(f"CREATE INDEX events_ends ON events(at) WHERE {_END_KINDS}")


# The events `events_ends` holds: a job reaching a final state (FINAL). Word for word in the queries that read
# it, as `_RESET_KINDS`; a literal, as the index keeps it (FINAL is a set: its order may change).
_END_KINDS = "kind IN ('done', 'failed', 'rejected', 'unknown', 'expired', 'cancelled')"

# The event a `gridrun cancel` records as it starts to record what became of jobs in flight, which no run does:
# nothing recorded from then on is the own record of a run whose process died before (`Store._others_since`).
CANCEL_BEGAN = "cancel-began"
# `gridrun cancel` is about to ask the provider to cancel a job's video (detail: its `provider_id`): a run that finds
# that video cancelled tells the user's decision from a cancel made elsewhere (by hand, another program, the provider).
# Recorded before the request is sent, as a create is: a cancel the provider took is the user's whatever happens
# after (the state not written then, the process killed); one that cannot be recorded is not sent. A request the
# provider refused keeps it: the user asked to cancel that video, and a cancel of it found later is taken as theirs.
CANCEL_ASKED = "cancel-asked"
# The error of a job `gridrun cancel` cancelled, as it and a run record it.
CANCELLED_ON_REQUEST = "cancelled on request (gridrun cancel)"
# The error of a job a run found cancelled at the provider though `gridrun cancel` did not ask (`cancel_asked`).
CANCELLED_ELSEWHERE = "cancelled at the provider, not by gridrun"

@migration
def m008_reported_cost(db: sqlite3.Connection) -> None:
    # What the provider reported it charged for the job's current attempt (None: it did not say), beside
    # cost_micros, which falls back to the price table's figure: a done job's sidecar written again from the
    # state says what the one the download wrote said. Jobs done before it was kept have None.
    db.execute("ALTER TABLE jobs ADD COLUMN cost_reported_micros INTEGER")


@migration
def m009_run_seen_at(db: sqlite3.Connection) -> None:
    # When a run last showed it was alive (written every few seconds while it goes on): a run killed during
    # long renders records nothing else for minutes, and `status` measures its time up to here.
    db.execute("ALTER TABLE runs ADD COLUMN seen_at REAL")


@migration
def m010_key_salt(db: sqlite3.Connection) -> None:
    # Values of the state as a whole. `key_salt`: made once (with the state, or here for one made before), part
    # of every idempotency key the state makes from now on (`idempotency_key`): two states' keys for one request
    # differ. Attempts recorded before keep the keys they were sent with.
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta (name, value) VALUES ('key_salt', ?)", (_first_salt(db),))


def _first_salt(db: sqlite3.Connection) -> str:
    """The `key_salt` a state gets: random for a new one; for one an earlier gridrun made, drawn from what it
    recorded first and never changes (its first run's start, process, host and manifest; its first job), so
    that each copy of it (a backup taken before the upgrade, restored after) gets the same one, as a copy made
    since keeps it, and sends a job again under the key the provider already knows. Two states made apart
    differ there as their random ids would."""
    run = db.execute("SELECT started_at, manifest_name, manifest_path, pid, host FROM runs ORDER BY id LIMIT 1").fetchone()
    if run is None:
        return secrets.token_hex(4)
    job = db.execute("SELECT hash, created_at FROM jobs ORDER BY id LIMIT 1").fetchone()
    first = json.dumps(["gridrun key salt", list(run), list(job) if job is not None else None])
    return hashlib.sha256(first.encode()).hexdigest()[:8]


@migration
def m011_take_endpoint(db: sqlite3.Connection) -> None:
    # Where each take was made: the endpoint (base URL) of the run that saw it done, and whether a simulator
    # answered there (`X-Gridrun-Simulator`). A simulator's video is cached only for runs against that same
    # endpoint: a run elsewhere (the real gateway) renders it again. Takes made before it was kept have neither,
    # and stay cached everywhere.
    db.execute("ALTER TABLE attempts ADD COLUMN endpoint TEXT")
    db.execute("ALTER TABLE attempts ADD COLUMN simulator INTEGER")


@migration
def m012_render_span(db: sqlite3.Connection) -> None:
    # How long the job's render took, bounded by the provider's own stamps (their difference, +1 s for whole
    # seconds): `completed_at` is when a run saw it finished, which counts the poll schedule and, for a render an
    # earlier run sent, the time no run was going. None: no stamps, or done before it was kept.
    db.execute("ALTER TABLE jobs ADD COLUMN render_span REAL")


@migration
def m013_run_duration(db: sqlite3.Connection) -> None:
    # How long the run took, from its start to its recorded end, by a clock the wall clock's steps (NTP, a clock
    # set by hand) do not move: its `ended_at` less its `started_at` is off by any step between them. None: not
    # recorded by the run itself (a later run marked it crashed), or ended before it was kept.
    db.execute("ALTER TABLE runs ADD COLUMN duration REAL")


@migration
def m014_run_key_print(db: sqlite3.Connection) -> None:
    # A short fingerprint of the API key the run sent its requests with (`plan.key_fingerprint`: never the key,
    # nor anything it can be found from); None for a run that sent none (the simulator built in). Another key at
    # the same endpoint is usually another account, which does not know the videos this one's created: a run with
    # it would record them unknown while they render and bill on the first. Runs before it was kept have none.
    db.execute("ALTER TABLE runs ADD COLUMN key_print TEXT")


# The schema this gridrun writes: one migration per version.
SCHEMA_VERSION = len(_MIGRATIONS)

# The columns of the tables whose rows are read whole, each with the schema that added it (`_MIGRATIONS`): a query
# names them (`_columns`) rather than take `*`, so that a column the file lacks (dropped by another program) is
# SQLite's "no such column", said as a state not of its schema (`lacks_schema`), not a row without a field its
# reader asks for.
_TABLE_COLUMNS: dict[str, tuple[tuple[int, str], ...]] = {
    "runs": (*((1, c) for c in ("id", "manifest_name", "manifest_path", "manifest_copy", "outputs_dir", "provider",
                                "model", "axes", "started_at", "ended_at", "status", "budget_micros", "pid", "host",
                                "argv")),
             (5, "final_money"), (9, "seen_at"), (13, "duration"), (14, "key_print")),
    "jobs": (*((1, c) for c in ("id", "hash", "key", "sweep", "vals", "params", "request", "state", "output_path",
                                "cost_estimate_micros", "cost_micros", "attempts", "provider_id", "url", "expires_at",
                                "error", "sha256", "width", "height", "duration", "created_at", "updated_at",
                                "submitted_at", "completed_at", "downloaded_at", "done_run_id")),
             (3, "reset_from"), (8, "cost_reported_micros"), (12, "render_span")),
    "attempts": (*((1, c) for c in ("id", "job_id", "n", "run_id", "idempotency_key", "state", "provider_id",
                                    "estimate_micros", "billed_micros", "started_at", "ended_at", "error")),
                 (2, "billed_run_id"), (11, "endpoint"), (11, "simulator")),
}


def _columns(table: str, schema: int, alias: str = "") -> str:
    """Every column of `table` a state of `schema` has, for a SELECT (each prefixed by `alias`, as `j.`)."""
    return ", ".join(f"{alias}{name}" for since, name in _TABLE_COLUMNS[table] if since <= schema)

KEYS_SALTED_AT = 10  # the schema from which the state has a meta table and a key salt (`m010_key_salt`)
# The meta row (this, then the run's id) in which a run going on keeps, with its heartbeat, when it next asks the
# provider about a job and when the provider last answered it (`Store.seen`, `Store.run_checks`): `status` in
# another process says them; the run's end removes it.
RUN_CHECKS = "run-checks:"
# The meta row (this, then the run's id) in which a run going on keeps, with its heartbeat, when its jobs are expected
# to have ended by their render times, before it has a pace (`Store.seen`, `Store.run_expected_end`); its end
# removes it. A row of its own: the checks' row keeps the shape every gridrun reads.
RUN_EXPECTED_END = "run-expected-end:"
# The meta row (this, then the run's id) in which a run going on keeps, with its heartbeat, the pause every request
# waits out because the provider asked for it (a 429's Retry-After, or a 502, 503 or 504's): [when it ends, wall
# clock; the HTTP status that asked], or null while there is none worth saying (`Store.seen`, `Store.run_paused`);
# its end removes it.
RUN_PAUSED = "run-paused:"
# The meta row (this, then the run's id) in which a run that ended on a cause of its own, not its jobs' (a disk that
# filled: `records.DISK_FULL`), keeps it: {"cause": ..., "note": what happened and what to do}, read with the run
# (`RunRecord.stopped_by`). Its status stays one every gridrun reads (`crashed`, `failed`); its end event has it too.
RUN_STOPPED_BY = "run-stopped-by:"
TAKES_MADE_AT = 11  # the schema from which attempts record where they were made (`m011_take_endpoint`)
RENDER_SPAN_SINCE = 12  # the schema from which jobs keep their render's span (`m012_render_span`)
RUN_DURATION_SINCE = 13  # the schema from which runs keep how long they took (`m013_run_duration`)
KEY_PRINTS_SINCE = 14  # the schema from which runs keep their API key's fingerprint (`m014_run_key_print`)
REPORTED_COST_SINCE = 8  # the schema from which jobs keep the cost the provider reported (`m008_reported_cost`)
RUN_SEEN_AT_SINCE = 9  # the schema from which runs keep when they were last seen alive (`m009_run_seen_at`)
RECOVERED_RUN = "recovered"  # the status of a run `gridrun recover` records (`runner.recover`), which sent nothing
SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1  # the integers SQLite stores (a run id is one)


# The job fields a run's `final` keeps: what a later run may change of a job the two runs share. Not where
# its video is: the record follows the file (put aside by a changed manifest, found in a moved project).
_FINAL_FIELDS = ("state", "error", "cost_micros", "cost_reported_micros", "attempts", "provider_id", "sha256",
                 "submitted_at", "completed_at", "downloaded_at", "render_span")
# A done take's fields: what a run caching an earlier take of a job puts back (`Store.take_back`).
_TAKE_FIELDS = ("sha256", "provider_id", "cost_micros", "cost_reported_micros", "submitted_at", "completed_at",
                "downloaded_at", "render_span")
# `output_path` is kept too, not put back as is: where the run had the video, found there again only while the
# sidecar there still records it (`_videos_as_left`). The record is JSON written by Python, not by SQLite's
# json_object, which writes a REAL with 15 significant digits: an epoch time would lose its last digits there (a
# record written so before is read as it is).
_FINAL_KEPT = (*_FINAL_FIELDS, "output_path")


def _since(schema: int, fields: Sequence[str]) -> tuple[str, ...]:
    """`fields` that a state of `schema` has (`render_span` since `RENDER_SPAN_SINCE`)."""
    return tuple(fields) if schema >= RENDER_SPAN_SINCE else tuple(f for f in fields if f != "render_span")


# The states of the attempts of a done job that did not make its video: a re-render of it cancelled, failed or
# refused leaves the job as it was (`cancel_job`, `rerender_failed`), done by an earlier attempt.
_NOT_ITS_VIDEO = ("cancelled", "failed", "rejected")
_NOT_ITS_VIDEO_SQL = ", ".join(f"'{s}'" for s in _NOT_ITS_VIDEO)
# The states of an attempt that made a video: done, and where a later run can move it on from there (fetching the
# video again, finding it gone at the provider). What a run made stays what it made (`Store._origins_sql`).
_MADE_A_VIDEO_SQL = ", ".join(f"'{s}'" for s in (S.DONE.value, S.DOWNLOADING.value, S.EXPIRED.value))
# The events of a done job's re-render a run sent or saw cancelled or failed, which put the job back as it was: its
# video made earlier, kept, not found cached by the run (`Store._origins_sql`).
_KEPT_KINDS = "('rerun-failed', 'rerun-cancelled')"

# The (run, job) pairs of the done jobs each run was to render again as it started (event `rerenders-queued`, its
# `jobs`): one the run put back unsent (a stop: its budget, Ctrl-C, a detach) is marked cached from the run that
# made its video, as a plain run reuses it, but the run meant to render it again: made earlier, as a run killed
# before sending it leaves it (`Store._origins_sql`). A detail not of that shape names none.
_QUEUED_SQL = ("SELECT q.run_id, CAST(r.value AS INTEGER) FROM events q, json_each(CASE WHEN json_valid(q.detail)"
               " AND json_type(q.detail, '$.jobs') = 'array' THEN q.detail ELSE '{}' END, '$.jobs') r"
               " WHERE q.kind = 'rerenders-queued'")

# The attempt a job's figures are of, as SQL over `jobs j`: its latest, but for a done job the one that made its
# video (the render its record names: an earlier take a run cached as it is, `Store.take_back`), else the latest
# that made one (a re-render cancelled or failed after it leaves the job as it was).
_VIDEO_ATTEMPT = ("CASE WHEN j.state='done' THEN COALESCE((SELECT MAX(n) FROM attempts b WHERE b.job_id = j.id"
                  f" AND b.provider_id = j.provider_id AND b.state NOT IN ({_NOT_ITS_VIDEO_SQL})),"
                  " (SELECT MAX(n) FROM attempts b WHERE b.job_id = j.id"
                  f" AND b.state NOT IN ({_NOT_ITS_VIDEO_SQL})), j.attempts) ELSE j.attempts END")


def _script(db: sqlite3.Connection, script: str) -> None:
    # executescript() would commit the surrounding transaction; a migration must stay atomic.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


# A job's fields that `reset` and the next `begin_submit` change, kept to undo them (`void_attempt`).
_RESET_KEEPS = ("state", "error", "sha256", "downloaded_at", "done_run_id", "provider_id", "url", "submitted_at",
                "completed_at", "cost_micros", "cost_reported_micros", "render_span",
                "output_path")  # output_path: where its video is (a later plan may move the job's)


def _was(text: str | None) -> dict[str, Any] | None:
    """A job's `reset_from`: what it was before a reset, or None."""
    was = json.loads(text) if text else None
    return dict(was) if isinstance(was, dict) else None


def as_judged(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """A job row as the next run will find it: one left planned by a reset whose attempt was never begun is
    what it was before (the run puts it back first, `undo_reset`). A row of a state before schema 3 (read as it
    is, `plan` before the run that migrates it) has no `reset_from`: no reset was kept then."""
    kept = row.keys()  # a sqlite3.Row: `in` would look among its values
    was = _was(row["reset_from"]) if row["state"] == S.PLANNED.value and "reset_from" in kept else None
    return was if was is not None else row


def _rerun_of(detail_text: str | None) -> tuple[bool, dict[str, Any] | None]:
    """Of a job's `reset` event (its detail), newest first: whether it tells what the re-run its later attempts
    belong to re-renders (a failure retry a run made on its own does not: it belongs to the re-run before it),
    and what the job was then when it was done with a video (its record), else None."""
    detail = json.loads(detail_text) if detail_text else {}
    detail = detail if isinstance(detail, dict) else {}
    if str(detail.get("reason", "")).startswith(FAILURE_RETRY):
        return False, None
    was = detail.get("was")
    if isinstance(was, dict) and was.get("state") == S.DONE.value and was.get("sha256"):
        return True, was
    return True, None


def _placeholders_as_failed(jobs: Sequence[JobRecord], errors: Mapping[str, str]) -> list[JobRecord]:
    """`jobs`, those of `errors` (key -> the provider's error) as the run met them: failed, their only take a
    simulator's placeholder made at another endpoint (kept at its path, done in the store, so that a plain run
    renders it again), which is no video of theirs here: no video, SHA-256, cost or earlier run it was cached
    from."""
    return [dataclasses.replace(j, state=JobState.FAILED.value, error=errors[j.key], cached_from_run=None,
                                cost_micros=None, cost_reported_micros=None, billed_run=None, sha256=None,
                                size=None, duration=None, downloaded_at=None, completed_at=None, render_span=None,
                                placeholder=True, sent_by=None, endpoint=None, simulated=None)
            if j.key in errors else j for j in jobs]


def _json(value: Any) -> str:
    return _ENCODER.encode(value)


def store_error(exc: BaseException) -> sqlite3.Error | None:
    """The state store's error that ended `exc`: `exc` itself, or one of those its exception groups gather (a
    run's task group gathers the errors of its tasks); None when there is none."""
    if isinstance(exc, sqlite3.Error):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for e in exc.exceptions:
            found = store_error(e)
            if found is not None:
                return found
    return None


def is_busy(exc: BaseException) -> bool:
    """`exc` is SQLite's refusal to wait longer for another connection's write transaction to end."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _full_disk(folder: Path | None) -> str | None:
    """What to do when the disk holding the state folder `folder` is all but full (less than NEARLY_FULL free):
    the folder, the bytes free, to free space; else None (not known, or room enough)."""
    if folder is None:
        return None
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    return f"the disk holding {folder} is full ({free:,} bytes free): free space on it" if free < NEARLY_FULL else None


def _no_space_fix(path: Path) -> str:
    """What to do when a file could not be made at `path` for "no space left": free space, or, where its disk has
    space but no free inode (`inodes_out`), free inodes."""
    return INODES_FIX if inodes_out(path) else "free space on its disk"


def _read_only_file(folder: Path | None) -> str | None:
    """Which of the state's files this process may not write, when one is there, and how to put it right: SQLite
    makes `state.db-wal` and `state.db-shm` with the state file's own mode, so a `status` read of a state.db made
    read-only leaves a read-only `-shm` behind, which refuses every later write after the state.db alone is made
    writable again. None when each file there is writable (or the folder is not known)."""
    if folder is None:
        return None
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        path = folder / name
        try:
            mode = path.stat().st_mode & 0o7777
        except OSError:
            continue
        if os.access(path, os.W_OK):
            continue
        fix = f"make it writable (chmod u+w {typed(path)})"
        if name == "state.db-shm":  # an index of the -wal SQLite builds again: nothing in it to keep
            fix += "; or, while no gridrun uses this state, remove it: it holds nothing to keep"
        return f"{path} is read-only (mode {mode:04o}): {fix}"
    return None


def recover_step(folder: Path | None) -> str:
    """The free step to try, before starting over, on a damaged state file in `folder` (None: not known) without a
    backup: SQLite's own recovery (`sqlite3`'s `.recover`), which reads what pages it can into a new file. Said
    only where the sqlite3 program is on the PATH; "" otherwise. It may recover every job, some or none: a job it
    loses is sent, and paid for, again, and a sqlite3 built without the page reader `.recover` needs writes an
    empty file, which gridrun refuses as emptied where runs left their files. The damaged file is kept aside with
    its log, never removed: a log left beside the recovered file would be read into it."""
    if shutil.which("sqlite3") is None:
        return ""
    where = "the state folder" if folder is None else typed(folder)
    return (f"; without one, first try SQLite's own recovery, free and sending nothing (while no gridrun uses the "
            f"state): in {where}, `sqlite3 state.db .recover | sqlite3 recovered.db`; then move state.db, and "
            "state.db-wal and state.db-shm where there, aside (not away) and recovered.db to state.db; `gridrun "
            "plan` then says what it holds (a job it did not recover is sent, and paid for, again; a sqlite3 "
            "whose `.recover` cannot read pages, `no such table: sqlite_dbpage`, writes an empty file, which gridrun "
            "refuses)")


def recover_command(outputs_dir: Path | None, state_dir: Path | None = None) -> str:
    """The free way on from a state lost, emptied or behind, said before starting over: `gridrun recover` of the
    manifest whose run wrote the output folder `outputs_dir` last (its lock records it, where it is now when the
    project holding it and the state folder `state_dir` moved since: `lock_of_state`; MANIFEST where it does not),
    which records as done each job whose video the folder holds whole beside its sidecar, sending nothing
    (`runner.recover`)."""
    writer = outputs_writer(outputs_dir) if outputs_dir is not None else None
    if writer is not None and outputs_dir is not None and state_dir is not None:
        writer = lock_of_state(writer, outputs_dir, state_dir) or writer
    manifest = typed(writer["manifest"]) if writer is not None else "MANIFEST"
    where = "the output folder" if outputs_dir is None else str(outputs_dir)
    said = (f"`gridrun recover {manifest}`, free (nothing sent): it records as done each job whose video {where} "
            "holds whole beside its sidecar, and `gridrun plan` then says what the jobs it did not find cost")
    run = writer.get("run", "") if writer is not None else ""
    if writer is None or not run.isdecimal() or writer.get("key_part_value"):
        return said
    # a lock an older gridrun wrote holds only a digest of the key part: where no sidecar carries the part, the
    # keys of the jobs the lost run left in flight are not known
    return (f"{said}; but the lock, written by an older gridrun, holds no key part: where no video of run {run} is "
            f"there, the lost run may have left jobs in flight at the provider whose keys are unknown, and `gridrun "
            f"run` pays for them again (`gridrun recover {manifest} --dry-run` says how many, and what they cost)")


def lacks_schema(exc: BaseException) -> bool:
    """`exc` is SQLite's error for a table or column the state file does not have: a state whose tables are not
    those of the schema it says it is of."""
    return isinstance(exc, sqlite3.OperationalError) and re.match(
        r"(no such (column|table)|table \S+ has no column named)\b", str(exc)) is not None


def _schema_said(folder: Path | None) -> int | None:
    """The schema the state file in `folder` says it is of (`PRAGMA user_version`); None where it cannot be read."""
    if folder is None:
        return None
    try:
        db = sqlite3.connect(f"{Path(os.path.abspath(folder / 'state.db')).as_uri()}?mode=ro", uri=True)
        try:
            return int(db.execute("PRAGMA user_version").fetchone()[0])
        finally:
            db.close()
    except (sqlite3.Error, OSError, ValueError):
        return None


def _schema_lacking(schema: int | None) -> str:
    """What to do about a state file that lacks a table or column of the schema it says it is of, `schema`
    (None: not known): not the folder's permissions, but what made or changed the file."""
    if schema is None:
        said = "the schema it says it is of"
    elif schema == SCHEMA_VERSION:
        said = f"schema {schema}, this gridrun's own, which it says it is of"
    else:
        said = (f"schema {schema}, which it says it is of, an older gridrun's (this one's is {SCHEMA_VERSION}), read "
                "as it is")
    bug = ("" if schema is None or schema == SCHEMA_VERSION else
           "; or this gridrun reads that schema wrongly (a bug: report it, with the schema)")
    return (f"the state file lacks a table or column of {said}: it was made or changed by another program (a sqlite3 "
            f"shell, a database browser, a script) or by a gridrun other than the one its schema is of (an older or "
            f"newer one, a build not released){bug}, not a matter of its folder's permissions: use it with the "
            "gridrun that wrote it, or restore state.db from a backup (the videos and their sidecars are untouched)")


def remedy(exc: sqlite3.Error, *, lock: str | None = None, folder: Path | None = None,
           schema: int | None = None) -> str:
    """What to do about the state store's error `exc`. `lock`: who holds gridrun's runner lock of the state
    (`Store.lock_note`), which tells a state held by another gridrun run from one held by another program.
    `folder`: the folder of the state file, whose disk an I/O error may have found full (`_full_disk`). `schema`:
    the schema the state file says it is of (read from the file in `folder` where not given)."""
    if lacks_schema(exc):
        return _schema_lacking(schema if schema is not None else _schema_said(folder))
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return INODES_FIX if folder is not None and inodes_out(folder) else "free space on its disk"
    if code == sqlite3.SQLITE_IOERR and (full := _full_disk(folder)) is not None:
        return full
    if code == sqlite3.SQLITE_CORRUPT:  # the file named by the store where it can (`Store.damaged_error`)
        return (f"{DAMAGED_CAUSE}. Restore state.db from a backup (the videos and their sidecars are untouched)"
                f"{recover_step(folder)}; or, to start over knowingly (every job sent and paid for again), "
                f"{START_OVER_ANYWHERE}")
    if code == sqlite3.SQLITE_IOERR and (limit := file_size_limit()) is not None:
        return f"{file_size_fix(limit)} (if it is not that, a disk error: check its disk)"
    if code == sqlite3.SQLITE_READONLY and (read_only := _read_only_file(folder)) is not None:
        return read_only
    if code == sqlite3.SQLITE_CANTOPEN and files_ran_out():  # SQLite names no cause: the process had no file left
        return open_files_fix()
    if is_busy(exc):
        if lock is not None and lock.startswith("gridrun pid"):
            return (f"another process holds state.db in a write transaction ({lock}: wait for that run to end; "
                    "or a sqlite3 shell or a database browser: close it)")
        why = f" ({lock})" if lock else ""
        return (f"another process holds state.db in a write transaction, not a gridrun run{why}: a sqlite3 shell "
                "or a database browser, say; close it (or end its transaction)")
    mask = _umask()
    if mask is not None and mask & 0o200:  # `umask 277`: the folder gridrun just made is read-only to it
        again = f" (`chmod -R u+w {typed(folder)}`)" if folder is not None else ""
        return (f"the umask, {mask:03o}, makes the files and folders gridrun makes read-only to their owner: work "
                f"under `umask 022` (or `umask 002` for a group to share the project) and make them writable{again}")
    return "check that the folder and its files are writable and on a local disk"


# How long opening or writing the state waits for another connection's write to end (SQLite's busy timeout).
BUSY_TIMEOUT = 10.0
# The longest single wait of SQLite's for a write lock a run waits for (`Store._begin_in_slices`): Ctrl-C is
# heeded between two.
BUSY_SLICE = 0.25
# How long a run's write waits in all for another process's write transaction (a database browser left open),
# the user told why after each BUSY_TIMEOUT (`Store.on_busy`). Nothing else in the run moves meanwhile (its
# writes are made from the event loop), so not for ever: the jobs sent go on at the provider and are collected
# by the next run whatever the wait.
BUSY_PATIENCE = 120.0
# How long a run's write waits once a wait of BUSY_PATIENCE ran out: the run ends when it said it would, its end
# recorded if that program has let go meanwhile, not after another BUSY_TIMEOUT for each write still to come.
BUSY_GRACE = 0.1


def _wal(db: sqlite3.Connection) -> None:
    """The state file in WAL mode. Switching a new file to it needs the file to itself, which SQLite does not
    wait for (its busy timeout does not apply): writers opening a new state at once try again meanwhile."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _full_sync(db: sqlite3.Connection) -> None:
    """On macOS, where fsync leaves a commit in the drive's write cache (a power cut could lose a job recorded
    as sent, and the next run would pay for it again), SQLite's commits and checkpoints use F_FULLFSYNC."""
    if sys.platform == "darwin":
        db.execute("PRAGMA fullfsync=ON")
        db.execute("PRAGMA checkpoint_fullfsync=ON")


# Files a state folder holds only once a state file was written in it: the runner lock (`Store.acquire_lock`,
# after the store is open), the in-process simulator's world (`providers.SIM_WORLD`, written under the lock),
# and SQLite's write-ahead log and its index (made once the file has its header).
_LEFT_BESIDE = ("lock", "sim-world.jsonl", "{name}-wal", "{name}-shm")


def real_state_file(path: Path) -> Path:
    """The state file `path` is: itself, or, when it is a link (a state shared by the state.db of two project
    folders linking to one file), the file the link leads to, where SQLite keeps its write-ahead log, and where the
    runner lock and the files a state folder holds beside its state file belong (one lock for one state)."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


# The state folder beside a manifest that names no `state_dir:`.
DEFAULT_STATE_FOLDER = ".gridrun"
# What gridrun writes as `.gitignore` into a state folder it makes, and into a `.gridrun/` that has none: a state
# is its project's own. Committed and cloned, each clone would share its `key_salt`, and so the idempotency keys
# of its resends: a `--force` in one would get the other's take back and record as paid a render nobody paid for.
STATE_GITIGNORE = "# Made by gridrun: a state is this project's own, never under version control (see README).\n*\n"
# What it writes into a `state_dir:` folder that was there before, which may hold files of the user's: its own
# files there, by name (the state file and SQLite's files beside it, a state put aside, the locks, the digests
# remembered, the in-process simulator's world, a state file being made).
STATE_FILES_GITIGNORE = (
    "# Made by gridrun: its state is this project's own, never under version control (see README).\n"
    "state.db\nstate.db-*\nstate.db.*\n.state.db.*\nlock\nstarting\n.starting.*\ndigests.json\n"
    "sim-world.jsonl\n.*.tmp\n")
# What it writes into the `.runs/` of an output folder: what there is this machine's alone (the folder's lock,
# with a process id, a host and absolute paths; the live report's stamp), which a clone must not take as its own.
RUNS_GITIGNORE = ("# Made by gridrun: this machine's own files, never under version control (see README).\n"
                  "lock\n*.stamp.js\n.*.tmp\n")


def keep_out_of_version_control(folder: Path, text: str = STATE_GITIGNORE) -> None:
    """Write `text` as the `.gitignore` of `folder` unless it has one (kept as it is). Only a help: a folder that
    takes no file (read-only, full) is left as it is, and what writes there next says why."""
    try:
        fd = os.open(folder / ".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:  # there already, or the folder takes no file
        return
    try:
        os.write(fd, text.encode())
    except OSError:  # a full disk: none rather than a part, for a later run to write whole
        os.close(fd)
        with suppress(OSError):
            os.unlink(folder / ".gitignore")
        return
    os.close(fd)


def _state_gitignore(made: bool, folder: Path) -> str:
    """What `.gitignore` a state folder gets: `*` in one gridrun made or a `.gridrun/`; its own files by name in a
    `state_dir:` folder that was there before."""
    return STATE_GITIGNORE if made or folder.name == DEFAULT_STATE_FOLDER else STATE_FILES_GITIGNORE


def state_home(state_dir: Path) -> Path:
    """The folder that holds the state file of the state folder `state_dir` (`real_state_file`): `state_dir`,
    unless its state.db links to a file elsewhere."""
    return real_state_file(Path(state_dir) / "state.db").parent


def left_in_state_folder(path: Path) -> Path | None:
    """A file beside the state file `path` that only runs recorded in it leave (`_LEFT_BESIDE`, the first
    found); None in a folder where no state was written yet."""
    for name in _LEFT_BESIDE:
        left = path.with_name(name.format(name=path.name))
        if os.path.lexists(left):
            return left
    return None


def _make_whole(path: Path) -> None:
    """Make the new state file `path` with its header written (WAL mode), under a temporary name linked into
    place, so that no process killed as it makes one leaves it empty: an empty state file beside a runner lock
    (kept when state.db is removed to start over) is refused as emptied (`Store._check_not_emptied`). A file
    made there meanwhile (a runner starting at once) is kept; a file system without hard links has SQLite make
    it in place, as it would."""
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)
        # Made empty first with the mode the user's umask leaves of 0o666, as every file gridrun writes: SQLite
        # would make it 0o644 whatever the umask (its -wal and -shm take the mode of the state file), and a team
        # sharing a project with umask 002 could then not run it but as the one who ran it first.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        with closing(sqlite3.connect(tmp, isolation_level=None)) as db:
            _full_sync(db)
            db.execute("PRAGMA journal_mode=WAL").fetchall()
        os.link(tmp, path)
    except (OSError, sqlite3.Error):  # FileExistsError: made meanwhile; else the connection makes it in place
        pass
    finally:
        tmp.unlink(missing_ok=True)


# A lock found held is tried again this many times, PROBE_WAIT s apart, before it is taken for another runner's:
# a `status` probing whether a run holds it (`_probe`) holds it for that long at most, between two system calls.
PROBE_TRIES = 10
PROBE_WAIT = 0.005


def _flock(fd: int, *, required: bool, patient: bool = True) -> bool:
    """An exclusive lock on `fd`, not waiting (`patient`: but for a probe's moment). BlockingIOError when another
    holds it; False when this file system cannot lock it and it is not `required` (otherwise the OSError)."""
    import fcntl

    for attempt in range(PROBE_TRIES if patient else 1):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if attempt + 1 >= (PROBE_TRIES if patient else 1):
                raise
            time.sleep(PROBE_WAIT)
        except OSError:
            if required:
                raise
            return False
        else:
            return True
    raise AssertionError("unreachable")


def held_elsewhere(lock_path: Path) -> bool:
    """Another runner (another process, or another store of this one) holds the runner lock `lock_path`: probed
    with a lock not waiting, let go at once. False where there is no lock file, or it cannot be locked."""
    return _probe(lock_path) is True


def runner_lock_free(lock_path: Path) -> bool:
    """No runner holds the runner lock `lock_path` (the lock file beside a state.db) nor its state folder's, on
    any host sharing the folder: each probed as `held_elsewhere` does, let go at once. False when that cannot be
    told: no lock file, or one that cannot be opened or locked here (a network share)."""
    return _probe(lock_path) is False and _probe(lock_path.parent) is not True


def runner_lock_holder(lock_path: Path) -> tuple[int, str] | None:
    """The process (pid, host) the runner lock file `lock_path` (beside a state.db) names, while a runner holds it
    now (probed as `held_elsewhere` does); None where none does, that cannot be told, or the file names none."""
    if _probe(lock_path) is not True:
        return None
    try:
        found = _holder(lock_path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return None if found is None else (found.pid, found.host)


def _probe(path: Path) -> bool | None:
    """Whether another open file (of any process) holds the lock of the file or folder `path`: tried with a lock
    not waiting, let go at once (a runner taking it meanwhile tries again: `_flock`). None when that cannot be
    told (no such file, or it cannot be opened or locked)."""
    try:
        fd = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR)
    except OSError:
        try:  # a read-only file system, or a file not ours to write: locked all the same where it allows it
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
    try:
        return False if _flock(fd, required=False, patient=False) else None
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and with it the probe's lock


class Holder(NamedTuple):
    """What the runner lock file or the STARTING file says of the process that wrote it: the process (`pid`
    on `host` since `since`) and, from a gridrun that records them, what it took the lock for (`command`: run,
    for a run or retry, or cancel) and the manifest it did it for (`name`, `manifest`: its path); those three
    None in a file of an older gridrun, or of a caller that named no manifest. `since` is the writer's local
    time, with no zone, as people read it; `started`, the same moment in seconds since the epoch, which any
    reader's time zone reads alike (None in a file of an older gridrun)."""

    pid: int
    host: str
    since: str
    command: str | None = None
    name: str | None = None
    manifest: str | None = None
    started: float | None = None

    @property
    def started_at(self) -> float | None:
        """When the process wrote the file (seconds since the epoch); for a file of an older gridrun, its local
        time read in this process's time zone (the writer's, most often); None when it cannot be read."""
        if self.started is not None:
            return self.started
        try:
            return time.mktime(time.strptime(self.since, "%Y-%m-%d %H:%M:%S"))
        except (ValueError, OverflowError):
            return None

    @property
    def process(self) -> str:
        """The process, and since when it holds the file: the local time it recorded, with its offset from UTC
        where the file gives the moment (`started`), as this machine's clock shows it."""
        since = self.since if self.started is None else local_time(self.started)
        return f"pid {self.pid} on {self.host} since {since}"

    def of(self, name: str) -> bool | None:
        """Whether this is a process of the manifest named `name`; None when the file does not say."""
        return None if self.name is None else self.name == name

    def same_file(self, manifest: str | Path, name: str | None = None) -> bool | None:
        """Whether this is a process of the manifest file `manifest` (`same_manifest`; `name`: its name, which
        tells it where the file the process named is gone); None when the file does not say."""
        return None if self.manifest is None else same_manifest(self.manifest, manifest,
                                                                  recorded_name=self.name, name=name)


def same_manifest(recorded: str | Path, manifest: str | Path, *, recorded_name: str | None = None,
                  name: str | None = None) -> bool:
    """Whether the manifest file a run or a lock recorded at `recorded` is the file `manifest`: one path, or one
    file where both are there (reached by a link, or another spelling of its path). Where the recorded path is
    gone (the project folder renamed or moved since) and `name` is given, the manifest of that name (the recorded
    one's, `recorded_name`), which the state's runs of it follow."""
    if Path(recorded) == Path(manifest):
        return True
    try:
        return os.path.samefile(recorded, manifest)
    except OSError:
        pass
    return name is not None and recorded_name == name and not os.path.lexists(recorded)


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the process on this machine that took the runner lock of `state_dir` last and still lives
    (it may hold the lock still), read from the lock file without taking the lock (a runner starting would
    find it taken); None when that process is gone, on another machine or not known."""
    held = lock_record(state_dir)
    return None if held is None else held.pid


def lock_record(state_dir: Path) -> Holder | None:
    """`lock_holder`, with what the lock file says it was taken for."""
    return _recorded_process(state_home(state_dir) / "lock")


def start_record(state_dir: Path) -> Holder | None:
    """The `gridrun run` or `retry` of `state_dir` that is loading or planning, before it takes the runner lock
    (`announcing_start`), with the manifest the STARTING file names; None when there is none, or it was killed
    meanwhile."""
    return _recorded_process(state_home(state_dir) / STARTING)


def recorded_process(lock_path: Path) -> Holder | None:
    """The process the lock file `lock_path` names, with what it took the lock for, while it lives on this
    machine (`_recorded_process`)."""
    return _recorded_process(lock_path)


def _recorded_process(path: Path) -> Holder | None:
    """The process `path` names (`_process_line`) when it is on this machine and still lives; None when it is
    gone, on another machine, or the file is missing or not one gridrun wrote."""
    from .records import PID_CLOCK_SLACK, process_start, process_state

    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = _holder(text)
    if found is None or found.host != socket.gethostname():
        return None
    try:
        os.kill(found.pid, 0)
    except ProcessLookupError:
        return None
    except OSError:  # alive, owned by someone else
        pass
    if process_state(found.pid) in ("Z", "X"):
        return None
    started, since = process_start(found.pid), found.started_at
    if started is not None and since is not None and started > since + PID_CLOCK_SLACK:
        return None  # a pid reused since
    return found


def _holder(text: str) -> Holder | None:
    """The process a lock or STARTING file's `text` names, read as `_process_line` writes it: a first line naming
    the process and, in a file of a gridrun that records them, a second one (JSON) naming the command and the
    manifest; None for a text gridrun did not write."""
    first, _, rest = text.strip().partition("\n")
    found = re.fullmatch(r"pid (\d+) on (.+) since (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", first)
    if found is None:
        return None
    try:
        said = json.loads(rest) if rest.strip() else {}
    except ValueError:
        said = {}
    said = said if isinstance(said, dict) else {}
    started = said.get("started")
    started = float(started) if isinstance(started, (int, float)) and not isinstance(started, bool) \
        and math.isfinite(started) else None
    said = {k: v for k, v in said.items() if k in ("command", "name", "manifest") and isinstance(v, str)}
    return Holder(int(found[1]), found[2], found[3], **said, started=started)


def _process_line(*, command: str = "run", manifest: str | Path | None = None, name: str | None = None) -> str:
    """This process as the lock file and the STARTING file name it, and a second line (JSON) saying when it
    started in seconds since the epoch (`started`) and, with `manifest` (its path; `name`, its name), what it
    holds the state for (`command`) and for which manifest, so that one refused or a `status` can tell a run of
    its own manifest from another's."""
    now = time.time()
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    line = f"pid {os.getpid()} on {socket.gethostname()} since {local}"
    # The moment again, in seconds since the epoch: the local time above means another moment to a reader in
    # another time zone (or in a DST fall-back hour), and would make it take a live process for a pid reused.
    said = {"started": round(now, 3)} if manifest is None else \
        {"command": command, "name": name, "manifest": str(manifest), "started": round(now, 3)}
    return line + "\n" + json.dumps({k: v for k, v in said.items() if v is not None}) + "\n"


# The state folders whose runner lock a Store of this process holds, with the manifest it was taken for and the
# thread that took it: a run of a host's other thread refused the lock is told it is its own process's
# (`Store._locked_out`), of which manifest, before that run has recorded itself.
_held_here: dict[Path, tuple[Path | None, int]] = {}


def _close_all(fds: Sequence[int]) -> None:
    """Close every descriptor of `fds`, each in a `finally` of the one before: an exception raised while one
    closes (a KeyboardInterrupt) still closes the rest, then is raised."""
    if not fds:
        return
    try:
        os.close(fds[0])
    finally:
        _close_all(fds[1:])


# The file beside the lock that a run or retry starting writes before it plans (`announcing_start`).
STARTING = "starting"


@contextmanager
def announcing_start(
    state_dir: Path, *, manifest: str | Path | None = None, name: str | None = None,
) -> Iterator[None]:
    """Say, in the STARTING file of `state_dir`, that this process is starting a run of the manifest file
    `manifest` (named `name`), from before its planning (seconds for a large manifest) until it takes the
    runner lock (`Store.acquire_lock` removes the file) or ends: `status --watch` started with the run then waits
    for it (`start_record`) rather than take the latest run, ended, for the one to report. Nothing is written into a
    state folder that does not exist yet (no earlier run there to take for this one) or cannot be written (the run
    says so when it opens the state); a file left by a process killed meanwhile names a process gone, which
    `start_record` ignores."""
    state_dir = state_home(state_dir)
    written = _write_start(state_dir, manifest=manifest, name=name)
    try:
        yield
    finally:
        if written:
            _withdraw_start(state_dir)


def _write_start(state_dir: Path, *, manifest: str | Path | None = None, name: str | None = None) -> bool:
    """The STARTING file of `state_dir` written, naming this process and the manifest; False when the folder is
    not there or cannot be written."""
    part = state_dir / f".{STARTING}.{os.getpid()}"
    try:
        part.write_text(_process_line(manifest=manifest, name=name), encoding="utf-8")
        os.replace(part, state_dir / STARTING)  # whole or not at all, for a watch reading it meanwhile
    except OSError:
        try:
            part.unlink()
        except OSError:
            pass
        return False
    return True


def _withdraw_start(state_dir: Path) -> None:
    """Remove the STARTING file of `state_dir` when it names this process (another run starting may have
    written its own since)."""
    path = state_dir / STARTING
    try:
        mine = rf"pid {os.getpid()} on {re.escape(socket.gethostname())} since "
        if re.match(mine, path.read_text(encoding="utf-8", errors="replace")):
            path.unlink()
    except OSError:  # gone already, or a folder not writable: a file naming a process gone is ignored
        pass


def outputs_writer(folder: Path) -> dict[str, str] | None:
    """The state folder and manifest (`state_dir`, `manifest`; with `pid`, `host`, `since`, `started`) of the run that took
    the lock of the output folder `folder` last (`Store.lock_outputs`), read without taking it; None when no
    run has, or the file is not one gridrun wrote."""
    try:
        doc = json.loads((folder / ".runs" / "lock").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("state_dir", "manifest")):
        return None
    return {k: str(v) for k, v in doc.items()}


def not_writable_said(paths: Sequence[Path], *, then: str, known: bool = False,
                      refused: str = "nothing was recorded or sent") -> str | None:
    """What is wrong when files gridrun writes to run (`paths`: the runner lock, the state file and its -wal and
    -shm, the output folder's .runs/lock, the in-process simulator's world), there already, cannot be opened to
    write by this user: their owner and mode, and the fix, a teammate's files being the usual case (made by a
    gridrun that did not follow the umask, or under a umask that keeps the group out); `then`, what to do once they
    can be written; `known`: the system refused them already (taken as said, not asked again); `refused`, what
    came of it (`plan`, which sends nothing, says what a run would do). None when each can."""
    found = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if known or not os.access(path, os.W_OK):
            found.append((path, st))
    if not found:
        return None
    shown = []
    for path, st in found:
        try:
            import pwd

            owner = f"uid {st.st_uid} ({pwd.getpwuid(st.st_uid).pw_name})"
        except (ImportError, KeyError):
            owner = f"uid {st.st_uid}"
        shown.append(f"{path} (owned by {owner}, mode {st.st_mode & 0o7777:04o})")
    uid = getattr(os, "geteuid", lambda: None)()
    which, it = ("it is", "it") if len(found) == 1 else ("they are", "them")
    user = "this user" if uid is None else f"this user (uid {uid})"
    # this user's own files (copied with their mode from a read-only medium, made under a umask that keeps
    # the owner from writing): the owner's write bit, which `chmod g+w` would not give
    mine = [typed(path) for path, st in found if st.st_uid == uid]
    own = " ".join(mine)
    others = " ".join(typed(path) for path, st in found if st.st_uid != uid)
    fixes = []
    if own:
        mask = _umask()
        kept = ""
        if mask is not None and mask & 0o200:
            kept = (f" (the umask, {mask:03o}, makes the files gridrun makes read-only to their owner: work under "
                    "`umask 022`, or `umask 002` for a group to share the project)")
        fixes.append(f"make {'it' if len(mine) == 1 else 'them'} writable: `chmod u+w {own}`{kept}")
    if others:
        fixes.append(f"have the owner run `chmod g+w {others}` for the group to share the project (and work under "
                     "`umask 002`, which the files gridrun makes follow), or run it as that user")
    fix = "; ".join(fixes)
    return (f"{'; '.join(shown)}: {which} not writable by {user}, and a run or cancel writes {it}; {refused}. "
            f"{fix[0].upper()}{fix[1:]}; then {then}")


def _umask() -> int | None:
    """This process's umask as Linux tells it (`/proc/self/status`), None where it does not: setting one to read
    it back would change the mode of a file another thread makes meanwhile."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _outputs_locked_out(folder: Path, holder: dict[str, str] | None, *, field: str) -> str:
    """Why the lock of the output folder was refused: the run holding it (its process, state folder and
    manifest), and what to do."""
    if holder is None:
        who = "another process"
    else:
        try:  # the moment, where the file gives it (a newer gridrun's), as this machine's clock shows it
            since = local_time(float(holder["started"]))
        except (KeyError, ValueError, OverflowError, OSError):
            since = holder.get("since", "?")
        who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {since}, "
               f"the state in {holder['state_dir']}, manifest {holder['manifest']}")
    own = "`outputs_dir:`" if field == "outputs_dir" else "`name:` or `outputs_dir:`"
    return (f"{folder}: another gridrun run writes into this output folder ({who}); the two would replace each "
            f"other's videos: wait for it to finish, or give this manifest its own {own}")


def _same_folder(recorded: str, folder: Path) -> bool:
    """Whether the output folder a run recorded is `folder`, by this path or by another that reaches it (a link)."""
    if Path(recorded) == folder:
        return True
    try:
        return os.path.samefile(recorded, folder)
    except OSError:  # gone, or not reachable from here: not this folder
        return False


def moved_writer(writer: dict[str, str], outputs_dir: Path, state_dir: Path) -> dict[str, str] | None:
    """The lock record `writer` of the output folder `outputs_dir` with its state folder and manifest where they are
    now, when the state folder it records is gone and lay, as the state folder `state_dir` lies now, beside where the
    output folder was: the folder holding both (a project with its `.gridrun/` and outputs) renamed, moved or
    restored elsewhere. Its `state_dir` is then `state_dir`, its `manifest` the recorded one at the same place
    under the folder's new path, `moved_from` the state folder it recorded and `outputs_then` where the output
    folder was (the path its runs recorded). None when the recorded state folder
    is there (another state's, or this one's by its path), or lay elsewhere."""
    recorded = Path(writer["state_dir"])
    if not recorded.is_absolute() or os.path.lexists(recorded):
        return None
    here, outputs = Path(os.path.abspath(state_dir)), Path(os.path.abspath(outputs_dir))
    try:
        root = Path(os.path.commonpath([here, outputs]))
    except ValueError:  # on two drives
        return None
    inner = here.relative_to(root).parts
    if not inner or recorded.parts[-len(inner):] != inner:
        return None
    then = Path(*recorded.parts[:-len(inner)])
    if then == root:
        return None
    manifest = Path(writer["manifest"])
    if manifest.is_absolute() and manifest.is_relative_to(then):
        manifest = root / manifest.relative_to(then)
    return {**writer, "state_dir": str(here), "manifest": str(manifest), "moved_from": str(recorded),
            "outputs_then": str(then / outputs.relative_to(root))}


def lock_of_state(writer: dict[str, str] | None, outputs_dir: Path, state_dir: Path,
                  salt: str | None = None) -> dict[str, str] | None:
    """The lock record `writer` of the output folder `outputs_dir` when it names the state folder `state_dir` as the
    state whose run wrote there last, its paths as they are now; None when it names another. It does by the state
    folder's path (or another reaching it, a link), or, the state folder it records gone, as that folder moved
    since: its key part (`key_part_value`, or the digest `key_part`) that of the state, `salt` (where the state
    holds one and the lock records one), or else the folder holding both renamed or moved (`moved_writer`). A
    copied project's lock names the state folder of the original, which is there: another state's."""
    if writer is None:
        return None
    if _same_folder(writer["state_dir"], Path(os.path.abspath(state_dir))):
        return writer
    moved = moved_writer(writer, outputs_dir, state_dir)
    value, digest = writer.get("key_part_value"), writer.get("key_part")
    if salt is None or not (value or digest):
        return moved
    if os.path.lexists(writer["state_dir"]) or (salt != value if value else key_part_digest(salt) != digest):
        return None
    return moved or {**writer, "state_dir": str(Path(os.path.abspath(state_dir))), "moved_from": writer["state_dir"]}


def _state_named(writer: dict[str, str]) -> str:
    """The state folder a lock record (`lock_of_state`) names, and where it is now when it moved since."""
    if "moved_from" not in writer:
        return writer["state_dir"]
    return f"{writer['moved_from']} (this state folder, at {writer['state_dir']} since it moved)"


def written_by_state(folder: str | Path, path: Path) -> bool:
    """Whether the lock of the output folder `folder` (`outputs_writer`) names the state file `path` itself as the
    state whose run wrote there last, by whatever path it reaches it: checkouts of one project whose manifests name
    one `state_dir:` (or link their state folder to one), a disk mounted at two paths. A copy of the state (a
    `.gridrun/` copied with its project, a backup restored elsewhere) holds the same runs but is another file, so
    it is not."""
    writer = outputs_writer(Path(folder))
    if writer is None:
        return False
    try:
        return os.path.samefile(real_state_file(Path(writer["state_dir"]) / Path(path).name), real_state_file(path))
    except OSError:  # gone, or not reachable from here: not this state
        return False


def _left_by_state_of(path: Path, outputs_dir: Path) -> tuple[str, Path] | None:
    """(The state folder the output folder's lock names, a file its runs left there) when that lock (`outputs_writer`)
    names the state folder of the state file `path` and runs left their files in `outputs_dir` (`left_by_runs`);
    else None."""
    writer = lock_of_state(outputs_writer(outputs_dir), outputs_dir, path.parent.resolve())
    if writer is None:
        return None
    left = left_by_runs(outputs_dir)
    return None if left is None else (_state_named(writer), left)


def _holds_no_state(path: Path) -> bool:
    """The state file `path` is SQLite's header alone (one page: no table, no schema version) with no write-ahead
    log beside it that holds more: as gridrun makes a new state file (`_make_whole`). A state whose first run was
    killed before SQLite's first checkpoint lives in its write-ahead log (state.db-wal) alone, so the file is this
    again once that log is lost (a backup or a sync of the file alone, a clean-up of temporary files). Read from
    the header's own fields (page size at byte 16, schema cookie at 40, user_version at 60), not by SQLite, which
    would make a log and its index beside the file as it opened it."""
    real = real_state_file(path)
    try:
        with open(real, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
        wal = real.with_name(real.name + "-wal")
        if os.path.exists(wal) and os.path.getsize(wal):
            return False
    except OSError:
        return False
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return False
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    return size <= page and not any(header[40:44]) and not any(header[60:64])


def check_not_lost(path: Path, outputs_dir: Path | None) -> None:
    """Refuse the state file `path`, not there, or there but holding no state (SQLite's header alone, its
    write-ahead log not there: `_holds_no_state`), when the output folder `outputs_dir` of the manifest it is
    opened for holds what runs recorded in a state at this very path left (`left_by_runs`), and its lock file
    (`outputs_writer`) says such a run wrote it last: the state's disk not mounted, its folder wiped (a tmpfs) or
    moved, its write-ahead log lost; read as new, it would have every job sent, and paid for, again. A run takes
    that lock only once its state is written, so a header-only file of a run killed as it made the state, after
    a start over (that lock removed), is new. Another state's runs (another `state_dir:`, a project copied) are
    no evidence: their videos are kept aside (`keep_file`), as `plan` warns. Removing the lock file starts over
    knowingly.

    :raises StateError: it is.
    """
    if outputs_dir is None:
        return
    there = os.path.lexists(path)
    if there and not _holds_no_state(path):
        return
    found = _left_by_state_of(path, outputs_dir)
    if found is None:
        return
    state_dir, left = found
    lock = outputs_dir / ".runs" / "lock"
    if there:
        real = real_state_file(path)
        wal = real.name + "-wal"
        # an empty log there: emptied, or made by a command that stopped on a full disk as it made the state
        emptied = real.with_name(wal).exists()
        raise StateError(
            f"{path}: the state file holds no state (SQLite's header alone): its write-ahead log {wal} is "
            f"{'empty' if emptied else 'not there'}, which held all a run recorded until SQLite copied it into "
            f"the file, yet runs it recorded left their files in {outputs_dir} ({left.relative_to(outputs_dir)}, "
            f"...), and {lock} says a run of the state in {state_dir} wrote them last: "
            + ("the log emptied (a copy or sync that failed), or the state made again by a `gridrun run` or "
               "`recover` that stopped on a full disk after it was lost? Read as new, it would have every job "
               "sent, and paid for, again. Restore both from a backup" if emptied else
               "the log lost (a backup or sync of state.db alone, a clean-up of temporary files)? Read as new, it "
               f"would have every job sent, and paid for, again. Put {wal} back beside it, or restore both from a "
               "backup")
            + f"; or {recover_command(outputs_dir, path.parent)}; or, to start over knowingly (every job sent and paid for "
            f"again), remove it and {lock}")
    clone = _from_a_clone(lock, path.parent)
    if clone is not None:
        from .gittrack import untrack_command

        raise StateError(
            f"{path}: the state file is not there, yet runs recorded in a state at this path left their files in "
            f"{outputs_dir} ({left.relative_to(outputs_dir)}, ...), and {lock} says a run of the state in "
            f"{state_dir} wrote them last; but {clone}: a fresh clone of a repository that committed its output "
            "folder? Then that state was another checkout's, and is not to be had here. Where it is (the checkout "
            "that ran it, a disk not mounted here), run there, or put its state folder here; or, to start a new "
            f"state here knowingly, remove {lock} (and stop committing it: `{untrack_command(lock, typed)}`), then "
            f"`gridrun plan` and `gridrun run`: every job is sent and paid for again, {_videos_there(outputs_dir)} "
            "included (the plan says how many of its jobs have a video there made for the very same request, "
            "and what they cost)")
    raise StateError(
        f"{path}: the state file is not there, yet runs it recorded left their files in {outputs_dir} "
        f"({left.relative_to(outputs_dir)}, ...), and {lock} says a run of the state in {state_dir} wrote "
        "them last: its disk not mounted, its folder wiped or moved? Read as new, it would have every job sent, and "
        "paid for, again. Mount that disk, or put the state folder back (state.db from a backup); or "
        f"{recover_command(outputs_dir, path.parent)}; or, to start over knowingly (every job sent and paid for again), "
        f"remove {lock}")


def _from_a_clone(lock: Path, state_dir: Path) -> str | None:
    """Why the output folder's lock `lock`, which names the state folder `state_dir` (not there), may not be this
    checkout's own: git tracks it (committed with the output folder, it came with a clone), or it was written on
    another machine and this one has never had that state folder. None when neither is known: a state lost here
    (a disk not mounted, a folder wiped) is refused as such."""
    from .gittrack import tracked

    if tracked(lock):
        return f"git tracks {lock.name} (it came with the repository, written by whoever committed it)"
    host = (outputs_writer(lock.parent.parent) or {}).get("host")
    if host and host != socket.gethostname() and not os.path.lexists(state_dir):
        return f"{lock.name} was written on another machine ({host}) and {state_dir} was never made here"
    return None


def _videos_there(outputs_dir: Path) -> str:
    """How many videos of gridrun's the output folder holds (those with its sidecar), as words."""
    n = 0
    for root, folders, files in os.walk(outputs_dir):
        folders[:] = [f for f in folders if f != ".runs"]
        n += sum(1 for name in files if name.endswith(".json") and gridrun_sidecar(Path(root) / name) is not None)
    return f"the {n} video{'s' if n != 1 else ''} of gridrun's there"


def _readonly_uri(path: Path) -> str:
    """The SQLite URI that opens `path` to read only. Its folder not writable (a read-only mount, an archive),
    SQLite could not make the shared-memory file WAL reading needs: a state file left whole (no write-ahead
    log beside it) is then opened as immutable, which needs none. The log and the folder are those of the file
    SQLite opens, a linked state.db's target (`real_state_file`), not the link's."""
    real = path.resolve()
    uri = f"file:{urllib.parse.quote(os.fsencode(real))}?mode=ro"  # a name's bytes as they are, UTF-8 or not
    wal = real.with_name(real.name + "-wal")
    if not os.access(real.parent, os.W_OK) and not (wal.exists() and wal.stat().st_size):
        uri += "&immutable=1"
    return uri


def _damaged(exc: BaseException | None) -> bool:
    """SQLite read a state file whose pages are not whole (SQLITE_CORRUPT, or an extended code of it): gridrun's,
    damaged."""
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_CORRUPT


# What damages a state file, as the user is told.
DAMAGED_CAUSE = "the file is damaged: a copy or sync that stopped midway, or a disk error"
# What to remove, besides a damaged or emptied state file, to start over, where no manifest tells the output folder.
START_OVER_ANYWHERE = ("remove it, and the .runs/lock of each output folder its runs wrote (which refuses a state "
                       "not there beside its runs' files)")
# The most problems `PRAGMA quick_check` lists when a state is opened to be written (the first is said, and
# whether there are more).
QUICK_CHECK_PROBLEMS = 3


class Store:
    """The state store of one state folder. One writer per folder (it holds the runner lock, `acquire_lock`);
    readers (status, reports) open their own, read-only, alongside it. A store's connection serves only the
    thread that opened it: a thread that reads opens a store of its own."""

    def __init__(
        self, path: Path, *, readonly: bool = False, clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] | None = None, outputs_dir: Path | None = None, then: str = "run",
        recovering: bool = False,
    ) -> None:
        """`clock`: the wall clock its times are recorded by (`time.time`); `monotonic`: the clock a run's
        duration and pace are measured by, which a step of the wall clock does not move (`time.monotonic`; `clock`
        itself when only that is given, so that a clock of one's own measures both). `outputs_dir`: the output
        folder of the manifest the store is opened for, where an empty state file is told from a new one
        (`_check_not_emptied`). `then`: the gridrun command to give again once what keeps the state from being
        opened is mended (run, retry, cancel, status, ...). `recovering`: opened by `gridrun recover`, which
        rebuilds a state lost, emptied or behind from the videos its runs left (`runner.recover`): the refusals
        of such a state (`_check_not_emptied`, `check_not_lost`, `check_not_behind`) are what it mends, not made."""
        self.path = Path(path)  # as the user gave it, in messages
        # The file SQLite opens, its links followed, once: the runner lock and the files beside the state file
        # are beside it (`real_state_file`).
        self.real = real_state_file(self.path)
        self.readonly = readonly
        self.clock: Callable[[], float] = clock if clock is not None else time.time
        self.monotonic: Callable[[], float] = (monotonic if monotonic is not None
                                               else clock if clock is not None else time.monotonic)
        # `monotonic` when this process recorded the start of its run (`start_run`): what its duration counts from
        self.run_began: float | None = None
        # the videos hashed to tell an earlier run's takes (`holds_take`), remembered beside the state file
        self.digests = Digests(self.real.parent / DIGESTS_NAME)
        self._lock_fds: list[int] = []  # the runner lock's descriptors, while held
        self._outputs_lock: tuple[int, dict[str, Any]] | None = None  # the output folder's lock and its record, held
        self.run_id: int | None = None  # the run this process records, once `start_run` made it
        # The manifest the store is opened for, as given (None: not known): the one an error's hint names.
        self.manifest_path: Path | None = None
        self.job_ids: dict[str, int] = {}  # hash -> job id of the jobs `start_run` recorded with it
        # Told (the seconds waited so far, False) each time a write has waited BUSY_TIMEOUT for another process's
        # write transaction, and (the seconds waited, True) once that write got through; set, a write waits
        # again, up to BUSY_PATIENCE in all (a run's: `Executor`).
        self.on_busy: Callable[[float, bool], None] | None = None
        self._waited_out = False  # a write waited BUSY_PATIENCE in vain: the next waits only BUSY_GRACE
        if self.path.is_dir():
            raise StateError(f"{self.path} is a folder; the state is a file there (move the folder aside)")
        self._then = then
        self._outputs_dir = outputs_dir
        self._check_link()
        self._recovering = recovering
        if not recovering:
            self._check_not_emptied(outputs_dir)
            check_not_lost(self.path, outputs_dir)
        new_file = False  # the state file made by this store (`_drop_unmade`)
        if readonly:
            if self.path.parent.is_file():
                raise NotRecordedError(f"{self.path.parent} is a file; the state is a folder (.gridrun/ beside the manifest)")
            if not self.path.exists():
                raise NotRecordedError(f"{self.path}: no state yet (nothing has run here)")
            target, uri = _readonly_uri(self.path), True
        else:
            made = not self.path.parent.exists()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(
                    f"{self.path.parent}: cannot make the state folder: {exc.strerror or exc}; nothing was sent: "
                    f"{_no_space_fix(self.path.parent) if exc.errno == errno.ENOSPC else 'check that it can be written'}, "
                    f"then `gridrun {then}` again") from exc
            # written once the file is known as gridrun's (another program's is left as it is)
            ignore = _state_gitignore(made, self.path.parent)
            new_file = not self.real.exists()
            if new_file:
                _make_whole(self.real)
            target, uri = str(self.real), False
        try:
            self.db = sqlite3.connect(target, uri=uri, isolation_level=None, timeout=BUSY_TIMEOUT)
        except sqlite3.Error as exc:
            if new_file:
                self._drop_unmade()
            raise self._cannot_open(exc) from exc
        self.db.row_factory = sqlite3.Row
        bugs.state_folder = self.real.parent  # where a bug's crash file goes (`bugs.crash_file`)
        self._pending = 0
        self._batch_depth = 0  # `batch()`es open, one inside another
        # The writer is the only one changing job states (it holds the lock): remember them, as written (a
        # rollback forgets them all: the next move reads its job again).
        self._known: dict[int, tuple[JobState, str]] = {}
        # reset events read for the earlier takes of re-rendered jobs (`_earlier_takes`), by event id
        self._resets_read: dict[int, tuple[bool, EarlierTake | None]] = {}
        self._relaxed = False  # synchronous=NORMAL while a deferred transaction is open
        self._salt: str | None = None  # `key_salt`, once read
        self._voided_keys: dict[int, tuple[int, str]] = {}  # job id -> (attempt, its key), of `void_attempt`
        self._voided_read = False  # the keys an earlier process voided (meta `voided-key:<job id>`) read in
        self._floors: dict[int, int] | None = None  # job id -> the floor of its attempts (`ATTEMPT_FLOOR`), read in
        try:  # a failure past here closes the connection (a state file refused, a newer schema)
            if not readonly:
                with self._opening():
                    self._refuse_foreign(*self._schema())  # before anything is written in another program's file
                    self._check_whole()
                    _full_sync(self.db)
                    _wal(self.db)
                    self.db.execute("PRAGMA synchronous=FULL")
                    self.db.execute("PRAGMA foreign_keys=ON")
                    self.schema = self._version()
                    self.check_not_behind(outputs_dir)  # before a migration, which an older gridrun cannot read
                    if held_elsewhere(self.real.with_name("lock")):
                        # Another runner holds the state, perhaps an older gridrun's, which could no longer read
                        # it once migrated: `acquire_lock`, refused, leaves it as it is; taken, migrates it.
                        self.schema = self._version()
                    else:
                        self._migrate()
            else:
                self._read_without_room(target)
                self._migrate()
                self.check_not_behind(outputs_dir)
        except BaseException:
            self.db.close()
            if new_file:
                self._drop_unmade()
            raise
        # The state file as opened, held by a writer to tell, as it closes, whether it was removed meanwhile
        # (`_write_back`); None where it could not be opened.
        self._file_fd: int | None = None
        if not readonly:
            keep_out_of_version_control(self.path.parent, ignore)
            with suppress(OSError):
                self._file_fd = os.open(self.real, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def _drop_unmade(self) -> None:
        """Remove the state file this store made and could not make a state of (a full disk: empty, or SQLite's
        header alone), with the write-ahead log and index SQLite made beside it, empty: left, it would be read as a
        state emptied or whose log was lost. Not one that holds more, or that a runner holds (another process
        making the state at once)."""
        real = self.real
        try:
            empty = real.stat().st_size == 0
        except OSError:
            return
        if not (empty or _holds_no_state(real)) or held_elsewhere(real.with_name("lock")):
            return
        wal, shm = real.with_name(f"{real.name}-wal"), real.with_name(f"{real.name}-shm")
        with suppress(OSError):
            if wal.exists() and wal.stat().st_size:
                return
            real.unlink()
            wal.unlink(missing_ok=True)
            shm.unlink(missing_ok=True)

    def _read_without_room(self, uri: str) -> None:
        """Open the state to read it (`uri`) where SQLite could not, for want of room: another program filled the
        state's disk (or `ulimit -f` is below 32 KiB), and SQLite cannot make the shared-memory file that reading
        a state in WAL mode needs. A state file left whole (no write-ahead log content beside it) that no runner
        holds is then opened as immutable, which needs none, as in a folder that cannot be written
        (`_readonly_uri`); else the error stands, said as it is (`_version`)."""
        if "immutable=1" in uri:
            return
        try:
            self.db.execute("PRAGMA user_version").fetchone()
            return
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
                                                                     sqlite3.SQLITE_CANTOPEN):
                return
        real = self.real.resolve()
        wal = real.with_name(f"{real.name}-wal")
        try:
            logged = wal.exists() and wal.stat().st_size > 0
        except OSError:
            return
        if logged or held_elsewhere(real.with_name("lock")):
            return  # a log to read, or a run writing it: said as it is
        self.db.close()
        self.db = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT)
        self.db.row_factory = sqlite3.Row

    # -- lifecycle ---------------------------------------------------------------------------------
    @contextmanager
    def _opening(self) -> Iterator[None]:
        """Open the state to write it (its settings, its migration): a failure is a StateError naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            if _damaged(exc):
                raise self._damaged_error(exc) from exc
            raise self._cannot_open(exc) from exc

    def _cannot_open(self, exc: sqlite3.Error) -> StateError:
        """The state file could not be opened (`exc`: a full disk, a file-size limit, a folder not writable,
        another program's write transaction): the file, what SQLite said, that nothing was sent, what to do."""
        if _damaged(exc):
            return self._damaged_error(exc)
        what = self._remedy(exc)
        if self.readonly:  # status, report, export: nothing to send
            return StateError(f"{self.path}: cannot open state: {exc}; {what}")
        return StateError(f"{self.path}: cannot open state: {exc}; nothing was sent: {what}, then "
                          f"`gridrun {self._then}` again")

    def _check_link(self) -> None:
        """Refuse a state.db that links to a file in a folder that is not there (a disk not mounted, a folder
        moved or removed): read as a new state, every job would be sent and paid for again; made in its place,
        the state would hide the one the link leads to. SQLite would say only "unable to open database file".

        :raises StateError: it does.
        """
        if not os.path.islink(self.path) or self.real.parent.is_dir():
            return
        try:
            target = os.readlink(self.path)
        except OSError:
            target = str(self.real)
        raise StateError(
            f"{self.path} is a link to {target}, whose folder {self.real.parent} is not there (a disk not mounted, "
            "a folder moved or removed): mount that disk or put the folder back, or point the link at the state "
            "file where it is now" + ("" if self.readonly else f"; then `gridrun {self._then}` again. Nothing was sent"))

    def _start_over(self) -> str:
        """What to remove to start over from a state file refused (damaged, emptied): the file, and the lock file
        of an output folder whose runs' files would then have the state refused as lost (`check_not_lost`): the
        manifest's own when it names this state folder; without a manifest, any such."""
        folder = self._outputs_dir
        if folder is None:
            return START_OVER_ANYWHERE
        if _left_by_state_of(self.path, folder) is None:
            return "remove it"
        return f"remove it and {folder / '.runs' / 'lock'}"

    def _recover_instead(self) -> str:
        """The free way on from an emptied state file, said before starting over (`recover_command`), where the
        manifest's output folder holds what its runs left (" ...; or"); "" where it is not known."""
        folder = self._outputs_dir
        if folder is None or left_by_runs(folder) is None:
            return ""
        return f" {recover_command(folder, self.path.parent)}; or"

    def _damaged_error(self, exc: sqlite3.Error | str) -> StateError:
        return StateError(self.damaged_text(exc))

    def damaged_text(self, exc: sqlite3.Error | str, *, sent: bool = False) -> str:
        """What to say of this state file, damaged (`exc`: SQLite's error, or what its check found): the file,
        that it is damaged, and how to recover. `sent`: a run had sent jobs when the damage was met, which a
        backup made before then does not hold."""
        backup = ("a backup made before this run does not hold the jobs it sent, which the next run would send, "
                  "and pay for, again" if sent else "the videos and their sidecars are untouched")
        return (f"{self.path}: the state file is damaged ({exc}): a copy or sync that stopped midway, or a disk "
                f"error. Restore state.db from a backup ({backup}){recover_step(self.path.parent)}; or, to start "
                f"over knowingly (every job sent and paid for again), {self._start_over()}")

    def check_whole(self) -> None:
        """The check a run makes as it opens the state (`_check_whole`), for a command that only reads it but says
        what a run would do (`gridrun plan`): it refuses the state as the run would, not only where what it reads
        happens to be damaged.

        :raises StateError: it is damaged.
        """
        self._check_whole()

    def _check_whole(self) -> None:
        """Refuse to write a state file SQLite finds damaged (`PRAGMA quick_check`: each page of each table and
        index whole). A run reads only what it needs: a damaged index it does not read would be written on, its
        damage spreading, the run ending well, and only a later command would meet it. Under a tenth of a second
        for a state of 10,000 jobs (13 MB); a new file has nothing to check.

        :raises StateError: it is damaged.
        """
        found = [str(row[0]) for row in self.db.execute(f"PRAGMA quick_check({QUICK_CHECK_PROBLEMS})")]
        if found != ["ok"]:
            first = found[0].split("\n")[-1]  # "*** in database main ***" comes first when it names the database
            more = ", and more" if len(found) > 1 else ""
            raise self._damaged_error(f"SQLite's check found: {first}{more}")

    def _check_not_emptied(self, outputs_dir: Path | None) -> None:
        """Refuse a state file there but empty (0 bytes) while what recorded runs left is found beside it (the
        runner lock, the simulator's world, SQLite's write-ahead log: `left_in_state_folder`), or in
        `outputs_dir`, the output folder of the manifest it is opened for (`left_by_runs`): it was emptied (a
        full disk, a copy or sync that failed), and read as a new state it would have every job sent, and paid
        for, again. Looked for beside it too, since any manifest sharing the state may be the first to open it
        once emptied. gridrun never leaves a new state file empty (`_make_whole`); a missing file is a new
        state (removed to start over), but beside the files its runs left in `outputs_dir` (`check_not_lost`).

        :raises StateError: it is.
        """
        try:
            if self.path.stat().st_size:
                return
        except OSError:
            return  # not there: a new state
        for where, left in ((outputs_dir, left_by_runs(outputs_dir) if outputs_dir is not None else None),
                            (self.real.parent, left_in_state_folder(self.real))):
            if where is not None and left is not None:
                raise StateError(
                    f"{self.path}: the state file is empty (0 bytes), yet runs it recorded left their files in "
                    f"{where} ({left.relative_to(where)}, ...): it was emptied (a full disk, a copy or sync that "
                    "failed), and read as new it would have every job sent, and paid for, again. Restore state.db "
                    f"from a backup; or{self._recover_instead()}, to start over knowingly (every job sent and paid "
                    f"for again), {self._start_over()}")

    def check_not_behind(self, outputs_dir: Path | None, videos: Sequence[str] = ()) -> None:
        """Refuse a state that lost the records of runs it made, when the output folder `outputs_dir` of the
        manifest it is opened for says so and its lock file (`outputs_writer`) says a run of this state folder
        wrote it last: the lock names a run of this state above the last one it records (`_note_outputs_run`); or,
        of `videos` (video paths whose sidecar of gridrun's names a render the state has no record of,
        `kept_aside`, read already for `plan`'s warning), one sent with this state's own idempotency key by a run
        the state does not hold as it was (`_lost_renders`). Its write-ahead log lost after a later run, or
        state.db restored from an older copy: read as it is, the jobs those runs sent would be sent, and paid for,
        again, their videos taken for another state's. Not the manifest copies `.runs/run-N.yaml`: committed with
        the output folder, a `git pull` or a copy brings another state's, numbered above this one's runs, with
        fresh times. Only the lock file and those sidecars are read. Removing the lock file goes on knowingly, as
        for a state that holds no state (`check_not_lost`): the next run records a run of its own.

        :raises StateError: it did.
        """
        if outputs_dir is None or self.schema < 1 or self._recovering:
            return
        salt = self.key_salt() if self.schema >= KEYS_SALTED_AT else None
        writer = lock_of_state(outputs_writer(outputs_dir), outputs_dir, self.path.parent.resolve(), salt)
        if writer is None:
            return
        last = self.db.execute("SELECT max(id) FROM runs").fetchone()[0]
        ran = writer.get("run", "")
        then = Path(writer.get("outputs_then", outputs_dir))  # where its runs recorded it, before a move
        above = int(ran) if ran.isdecimal() and len(ran) <= 18 and not self.records_run(int(ran), outputs_dir) \
            and not self.records_run(int(ran), then) else None
        lost = self._lost_renders(videos)
        if above is None and not lost:
            return
        found = []
        if above is not None and above <= (last or 0):
            held = self.db.execute("SELECT 1 FROM runs WHERE id=?", (above,)).fetchone() is not None
            found.append(f"{outputs_dir / '.runs' / 'lock'} names run {above} of this state as the last to write the "
                         f"folder (its manifest copy run-{above}.yaml), while "
                         + (f"the state's run {above} is a recover of another output folder, numbered after the loss"
                            if held else f"the state records no run {above}"))
        elif above is not None:
            recorded = f"the last run it records is run {last}" if last else "it records no run"
            found.append(f"{outputs_dir / '.runs' / 'lock'} names run {above} of this state as the last to write the "
                         f"folder (its manifest copy run-{above}.yaml), while {recorded}")
        if lost:
            video, doc = lost[0]
            more = f" and {len(lost) - 1:,} more" if len(lost) > 1 else ""
            by = f"by run {doc['run_id']} " if isinstance(doc.get("run_id"), int) else ""
            found.append(f"{video}{more} holds a render sent {by}with this state's own key ({doc['idempotency_key']}, "
                         f"its sidecar says) that it has no record of")
        wal = self.real.name + "-wal"
        lock = outputs_dir / ".runs" / "lock"
        raise StateError(
            f"{self.path}: the state has lost the records of runs it made: {'; and '.join(found)}; and {lock} says "
            f"a run of the state in {_state_named(writer)} wrote the folder last: its write-ahead log {wal} lost after "
            "a later run (a backup or sync of state.db alone, a clean-up of temporary files), or state.db restored "
            "from an older copy? Read as it is, it would send again, and pay again for, the jobs those runs sent, "
            f"taking their videos for another state's. Put {wal} back beside it, or restore both from a backup made "
            f"after those runs; or {recover_command(outputs_dir, self.path.parent)}; or, to go on knowingly from the state as it is "
            "(the jobs those runs sent are sent and paid for again, their videos kept under .runs/superseded/), "
            f"remove {lock}")

    def _lost_renders(self, videos: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """Of `videos`, those whose sidecar of gridrun's names a render this state has no record of (its provider
        id not among `renders`) sent with this state's own idempotency key (`idempotency_key`: its salt), by a run
        the state does not record, or records as begun before the render was sent (a run of that number begun
        later is one a run went on with knowingly after the loss), with their sidecars. A render sent before a
        `gridrun recover` began is none: that recover left its video (altered, another's), knowingly."""
        if not videos or self.schema < KEYS_SALTED_AT:
            return []
        salt = self.key_salt()
        lost = []
        recovered: float | None = None  # the start of the latest recover run, once read
        for video in videos:
            doc = gridrun_sidecar(Path(video))
            key = doc.get("idempotency_key") if doc is not None else None
            if doc is None or not isinstance(key, str) or not key.startswith(f"gridrun-{doc['hash'][:24]}-{salt}-"):
                continue
            if doc["provider_id"] in self.renders(doc["hash"]):
                continue
            run_id, sent = doc.get("run_id"), doc.get("submitted_at")
            if isinstance(sent, (int, float)) and not 0 <= sent <= self.clock() + 86400:
                continue  # a time no download writes (a sidecar edited or damaged): no evidence of a run lost
            if isinstance(run_id, int) and isinstance(sent, (int, float)):
                row = self.db.execute("SELECT started_at FROM runs WHERE id=?", (run_id,)).fetchone()
                if row is not None and float(row[0]) > sent:
                    continue
            if isinstance(sent, (int, float)) and recovered is None:
                recovered = self.db.execute(  # the state went on from what a recover found after the loss
                    f"SELECT MAX(started_at) FROM runs WHERE status='{RECOVERED_RUN}'").fetchone()[0]
            if isinstance(sent, (int, float)) and recovered is not None and float(recovered) > sent:
                continue
            lost.append((video, doc))
        return lost

    def _schema(self) -> tuple[int, list[str]]:
        """The state file's `PRAGMA user_version` and the first few of its tables, read at once (a runner
        migrating the file meanwhile writes both in one transaction)."""
        row = self.db.execute(
            "SELECT (SELECT user_version FROM pragma_user_version), (SELECT group_concat(name, char(10)) FROM "
            "(SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name LIMIT 4))").fetchone()
        return int(row[0]), (str(row[1]).split("\n") if row[1] else [])

    def _refuse_foreign(self, version: int, tables: list[str]) -> None:
        """A new state has no table until its first migration, made with its version in one transaction: a file
        with tables but no version is another program's database, which gridrun leaves as it is.

        :raises StateError: it is one.
        """
        if version == 0 and tables:
            more = ", ..." if len(tables) > 3 else ""
            raise StateError(
                f"{self.path}: not a gridrun state file (an SQLite database of another program, with tables "
                f"{', '.join(map(repr, tables[:3]))}{more}); gridrun leaves it as it is: move it aside, or give "
                "the manifest another state_dir")

    def _version(self) -> int:
        """The schema the state file has (`PRAGMA user_version`), one this gridrun knows."""
        try:
            version, tables = self._schema()
        except sqlite3.DatabaseError as exc:
            if _damaged(exc):
                raise self._damaged_error(exc) from exc
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_NOTADB:
                raise StateError(f"{self.path}: not a gridrun state file ({exc})") from exc
            raise self._cannot_open(exc) from exc  # a full disk, a disk error, a folder it cannot lock in
        self._refuse_foreign(version, tables)
        if version > len(_MIGRATIONS):
            raise StateError(
                f"{self.path}: written by a newer gridrun (schema {version}, this one knows {len(_MIGRATIONS)}); "
                "upgrade gridrun to use it"
            )
        return version

    def _migrate(self) -> None:
        version = self._version()
        self.schema = version
        if version == len(_MIGRATIONS):
            return
        if self.readonly and version == 0:
            # Nothing written yet: a run is creating the file this moment, or an empty file.
            raise NotRecordedError(f"{self.path}: no state yet (nothing has run here)")
        if self.readonly:
            return  # read as it is (status, report): readers cope with every schema since the first
        # Writers opening the state at once (runners started together, before any takes the runner lock) migrate
        # it one at a time: each waits for the write lock (the busy timeout), then reads the schema again, which
        # the one before may have migrated already.
        # Each step in a transaction of its own: one that fails leaves the steps before it made.
        while True:
            with self._tx():
                version = self._version()
                if version >= len(_MIGRATIONS):
                    break
                _MIGRATIONS[version](self.db)
                self.db.execute(f"PRAGMA user_version = {version + 1}")
        self.schema = len(_MIGRATIONS)

    def close(self) -> None:
        """Commit what is deferred and let the file and the runner lock go; a writer's file removed meanwhile is
        written back first (`_write_back`).

        :raises StateWriteError: the file was removed meanwhile (written back, or not: said which).
        """
        try:
            self.flush()
            if self._removed():
                self._write_back()
        finally:  # a commit that failed (a full disk) still lets the connection and the lock go
            # each in a `finally` of its own: a KeyboardInterrupt raised in one (a second Ctrl-C as a run ends)
            # still lets the others go, or the process would hold the lock until it exits
            try:
                self.db.close()
            finally:
                try:
                    self.release_lock()
                finally:
                    fd, self._file_fd = self._file_fd, None
                    if fd is not None:
                        os.close(fd)

    def _removed(self) -> bool:
        """The state file this writer opened is no longer in any folder: removed (its folder wiped, a clean-up)
        while the store wrote on into it. A file moved (the project renamed) is still in one, and still whole."""
        if self._file_fd is None:
            return False
        try:
            return os.fstat(self._file_fd).st_nlink == 0
        except OSError:
            return False

    def moved(self) -> tuple[bool, Path | None]:
        """Whether the state file this writer opened is in a folder still, but no longer at its path: the project
        (or state) folder renamed or moved while the store wrote on into it; and, where the system tells it, where
        the file is now (None: not known)."""
        if self._file_fd is None:
            return False, None
        try:
            held = os.fstat(self._file_fd)
        except OSError:
            return False, None
        if held.st_nlink == 0:
            return False, None  # removed, not moved (`_removed`)
        try:
            there = os.stat(self.real)
            if (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino):
                return False, None
        except OSError:
            pass
        try:
            now = Path(os.readlink(f"/proc/self/fd/{self._file_fd}"))
        except OSError:
            return True, None
        return True, (now if now.is_absolute() and now.exists() else None)

    def _write_back(self) -> None:
        """Write the state this writer holds open, its file removed meanwhile, back at its path (its folder made
        again), or, where another state file is there now, beside it: every record of what the runs paid would
        otherwise go with the last descriptor, and the next run, finding none, refuse the state as lost or pay
        for every job again.

        :raises StateWriteError: always: written back (where), or not (why).
        """
        target = self.real
        tmp: Path | None = None
        try:
            made = not target.parent.is_dir()
            target.parent.mkdir(parents=True, exist_ok=True)
            keep_out_of_version_control(target.parent, _state_gitignore(made, target.parent))
            if os.path.lexists(target):  # a new state made there meanwhile: kept as it is
                target = target.with_name(f"{target.name}.removed-{os.getpid()}")
            tmp = target.with_name(f".{target.name}.new-{os.getpid()}")
            tmp.unlink(missing_ok=True)
            with closing(sqlite3.connect(tmp, isolation_level=None)) as copy:
                self.db.backup(copy)
            try:
                os.link(tmp, target)  # not over a file made there this moment
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                os.rename(tmp, target)
        except (OSError, sqlite3.Error) as exc:
            raise StateWriteError(
                f"{self.path}: the state file was removed while this run went on (its folder wiped, a clean-up?), "
                f"and what it recorded could not be written back there ({exc}): the videos and their sidecars are "
                "in the output folder; the jobs still in flight are lost to gridrun") from exc
        finally:
            if tmp is not None:
                with suppress(OSError):
                    tmp.unlink()
        where = "there" if target == self.real else f"beside the state file made there since, as {target}"
        raise StateWriteError(
            f"{self.path}: the state file was removed while this run went on (its folder wiped, a clean-up?); what "
            f"it recorded was written back {where} from the file it still held open. Keep whatever removed it "
            "away from the state folder; `gridrun status` shows the run")

    def store_problem(self, exc: sqlite3.Error) -> str:
        """The state store's error `exc`, met reading it (nothing sent for it): the file, what happened, what to do."""
        if _damaged(exc):
            return self.damaged_text(exc)
        return f"the state store {self.path} cannot be used: {exc}; {self._remedy(exc)}"

    def unwritable(self, exc: sqlite3.Error) -> StateWriteError:
        """The error that ends a run whose state could not be written (`exc`, a full disk, an I/O error)."""
        if _damaged(exc):
            return StateWriteError(f"{self.damaged_text(exc, sent=True)}. The run stopped sending jobs; those it sent "
                                   "go on at the provider")
        return StateWriteError(
            f"the state store {self.path} cannot be used: {exc}; the run stopped sending jobs. Those it sent go "
            f"on at the provider, and none was paid twice (each was recorded before it was sent): "
            f"{self._remedy(exc)}, then `gridrun run` again, which collects them at no new cost"
        )

    def unusable(self, exc: sqlite3.Error, *, then: str = "run") -> StateError:
        """The error for the state store's `exc` met before a run began (nothing was sent): the file, what
        happened, and what to do before `gridrun <then>` again."""
        if _damaged(exc):
            return StateError(f"{self.damaged_text(exc)}. Nothing was sent")
        return StateError(f"the state store {self.path} cannot be used: {exc}; nothing was sent: "
                          f"{self._remedy(exc)}, then `gridrun {then}` again")

    def cancel_unwritable(self, exc: sqlite3.Error, *, sent: Sequence[str]) -> StateWriteError:
        """The error that ends a `gridrun cancel` whose state could not be written (`exc`): the file, what
        happened, the jobs whose cancel request was `sent` with its outcome unrecorded (the requests stand at the
        provider, their characters that act on a terminal escaped), and what to do before `gridrun cancel` again,
        which asks the provider and records the rest."""
        if sent:
            one = len(sent) == 1
            keys = ", ".join(visible(key) for key in sent[:3]) + (" …" if len(sent) > 3 else "")
            what = (f"the cancel request{'' if one else 's'} sent for {len(sent):,} job{'' if one else 's'} ({keys}) "
                    f"{'stands' if one else 'stand'} at the provider, {'its' if one else 'their'} outcome not recorded")
            it = "it" if one else "them"
        else:
            what, it = "no cancel request was left unrecorded", "the jobs still in flight"
        if _damaged(exc):
            return StateWriteError(f"{self.damaged_text(exc, sent=True)}. As for the cancel, {what}")
        return StateWriteError(
            f"the state store {self.path} cannot be used: {exc}; {what}: {self._remedy(exc)}, "
            f"then `gridrun cancel` again, which asks the provider what became of {it} and records that "
            "(as `gridrun run` does)"
        )

    @property
    def _lock_free(self) -> Callable[[], bool]:
        """Whether no runner holds this state folder's runner lock now (`runner_lock_free`), which the runs read
        from it ask: a call of a module's function on the lock's path, not of this store, so that a run, and what
        holds it (`Snapshot`, `Runs`), pickles and outlives the store."""
        return functools.partial(runner_lock_free, self.real.with_name("lock"))

    @property
    def _lock_holder(self) -> Callable[[], tuple[int, str] | None]:
        """The process holding this state folder's runner lock now (`runner_lock_holder`), as `_lock_free`."""
        return functools.partial(runner_lock_holder, self.real.with_name("lock"))

    def _run_record(self, row: sqlite3.Row, stops: Mapping[int, Mapping[str, str]] | None = None) -> RunRecord:
        """The run of `row` (`run_record`), read from this state folder, whose runner lock tells whether it is gone;
        `stops`: the causes runs ended on (`_stops`), read for this run alone where None."""
        stopped = (self._stops(row["id"]) if stops is None else stops).get(row["id"])
        return run_record(row, lock_free=self._lock_free, lock_holder=self._lock_holder,
                          state_folder=str(self.real.parent), stopped=stopped)

    def _cols(self, table: str, alias: str = "") -> str:
        """Every column of `table` this state's schema has, named for a SELECT (`_columns`)."""
        return _columns(table, self.schema, alias)

    def _remedy(self, exc: sqlite3.Error) -> str:
        """What to do about the state store's error `exc` (`remedy`), this state's lock and folder known."""
        return remedy(exc, lock=self.lock_note(), folder=self.real.parent, schema=getattr(self, "schema", None))

    def lock_note(self) -> str:
        """Who holds gridrun's runner lock of this state: this process, another gridrun's (pid), or none."""
        holder = lock_holder(self.real.parent)
        if self._lock_fds or holder == os.getpid():  # held, or held until this store closed
            return "this gridrun holds the runner lock"
        return "gridrun's runner lock is free" if holder is None else f"gridrun pid {holder} holds the runner lock"

    def _begin(self) -> None:
        """BEGIN IMMEDIATE: the write lock, waited for BUSY_TIMEOUT (SQLite's busy timeout); with `on_busy` set,
        waited for again while another process's write transaction holds it, up to BUSY_PATIENCE in all (the
        last wait cut to what is left, so the run stops when it says), `on_busy` told after each wait and once
        the lock is had. After a wait that ran out, the next write waits only BUSY_GRACE."""
        if self.on_busy is None or self._waited_out:
            self._begin_within(BUSY_GRACE if self._waited_out else BUSY_TIMEOUT)
            self._waited_out = False
            return
        start = time.monotonic()
        told = False
        while True:
            left = max(0.0, start + BUSY_PATIENCE - time.monotonic())
            try:
                self._begin_in_slices(min(left, BUSY_TIMEOUT))
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                if left <= BUSY_TIMEOUT:
                    self._waited_out = True  # given up: the run ends now, its end recorded if it can be at once
                    raise
                told = True
                self.on_busy(time.monotonic() - start, False)
            else:
                if told:
                    self.on_busy(time.monotonic() - start, True)
                return

    def _begin_in_slices(self, timeout: float) -> None:
        """BEGIN IMMEDIATE, waiting at most `timeout` seconds, in waits of at most BUSY_SLICE: SQLite's own wait
        holds off Python's signal handlers, so Ctrl-C before the run takes its signals (while it opens its run
        record) would otherwise wait for the rest of a whole BUSY_TIMEOUT."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                self._begin_within(max(0.0, min(left, BUSY_SLICE)))
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or left <= BUSY_SLICE:
                    raise

    def _begin_within(self, timeout: float) -> None:
        """BEGIN IMMEDIATE, waiting at most `timeout` seconds for another connection's write transaction: the
        connection's busy timeout (BUSY_TIMEOUT) is set shorter for this one attempt, and put back after."""
        if timeout >= BUSY_TIMEOUT:
            self.db.execute("BEGIN IMMEDIATE")
            return
        self.db.execute(f"PRAGMA busy_timeout = {math.ceil(timeout * 1000)}")  # to the end of it, not a ms short
        try:
            self.db.execute("BEGIN IMMEDIATE")
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        """Close the store; an error of SQLite's that found the file damaged, or lacking a table or column of its
        schema, as the store says it (the file, its schema, how to recover), not as SQLite alone does."""
        try:
            self.close()
        except sqlite3.Error as failed:
            if _damaged(failed):
                raise self._damaged_error(failed) from failed
            raise
        if _damaged(exc):
            assert isinstance(exc, sqlite3.Error)
            raise self._damaged_error(exc) from exc
        if isinstance(exc, sqlite3.Error) and lacks_schema(exc):
            raise StateError(self.store_problem(exc)) from exc

    @contextmanager
    def _tx(self) -> Iterator[None]:
        if self._in_batch():
            yield
            return
        self.flush()  # deferred writes first (in their own commit), and synchronous=FULL for this one
        try:
            self._begin()
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self._known.clear()  # it may hold moves rolled back: read them again from the database
            raise

    @contextmanager
    def _deferred(self) -> Iterator[None]:
        """Writes that join the open deferred transaction, committed by `flush()` (or the open batch)."""
        if self._in_batch():
            yield
            return
        if not self.db.in_transaction:
            # Its commit need not reach the disk at once (no fsync of the log): the next durable commit
            # (synchronous=FULL) makes it durable too, and a crash of the process alone loses nothing.
            self._relax()
            self._begin()
        yield
        self._pending += 1

    def _in_batch(self) -> bool:
        return self._batch_depth > 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group several writes in one commit (one fsync). Never used around `begin_submit`'s commit."""
        depth = self._batch_depth
        if depth == 0:
            self.flush()
            self._begin()
        self._batch_depth = depth + 1
        try:
            yield
        except BaseException:
            self._batch_depth = depth
            if depth == 0 and self.db.in_transaction:
                self.db.execute("ROLLBACK")
                self._known.clear()  # it may hold moves rolled back: read them again from the database
            raise
        self._batch_depth = depth
        if depth == 0:
            self.db.execute("COMMIT")

    @property
    def pending(self) -> bool:
        """Deferred writes wait for `flush()`."""
        return self._pending > 0

    @property
    def then(self) -> str:
        """The command that opened the store, which its errors say to run again (`run`, `retry`, `recover`)."""
        return self._then

    def flush(self) -> None:
        """Commit deferred writes (see `lazy`)."""
        if self._pending and self.db.in_transaction and not self._in_batch():
            self.db.execute("COMMIT")
        self._pending = 0
        if self._relaxed and not self.db.in_transaction:
            self.db.execute("PRAGMA synchronous=FULL")
            self._relaxed = False

    def _relax(self) -> None:
        """synchronous=NORMAL for the deferred transaction about to begin (`flush()` puts FULL back)."""
        if not self._relaxed:
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._relaxed = True

    # -- the lock ------------------------------------------------------------------------------------
    def acquire_lock(
        self, *, then: str = "run again", manifest: str | Path | None = None, name: str | None = None,
        cancel: bool = False, requests: Sequence[str] = (), again: str | None = None,
    ) -> None:
        """Take the runner lock of this state folder; refuse with who holds it (the run and manifest, when the
        state or the lock file records them), and `then`, what to do once it is stopped; `again` (`then` where
        None), what to do once a lock or state file that is a link, or that this user cannot write, is mended: no
        run holds the state there, so advice of `then` about one would name nothing. `manifest`: the
        manifest's path, for whom the lock is taken (`name`: its name), recorded in the lock file with what for;
        `cancel`: taken to cancel jobs, which waiting for the holder to end, or a state of its own, would not do
        (`requests`: the hashes of the jobs the manifest plans, which another manifest's run may have in flight).
        A dead holder's lock is free. A state of an older schema, left as it was when opened because another
        runner held it then, is migrated once the lock is taken."""
        # The lock file beside state.db, opened to write (network file systems lock only such files), and where
        # the file system allows it the state folder too: a folder is not deleted by hand while its state.db is
        # wanted, as a stale-looking lock file may be (the kernel frees both locks when their holder dies).
        lock_path = self.real.with_name("lock")
        # a teammate's files this user cannot write (a stricter umask's): said with their owner and mode, before
        # the system's bare "Permission denied" of the first, or a state SQLite would open read-only
        said = not_writable_said([lock_path, self.real, self.real.with_name(f"{self.real.name}-wal"),
                                  self.real.with_name(f"{self.real.name}-shm")], then=again or then)
        if said is not None:
            raise StateError(said)
        if os.path.islink(lock_path):  # a link committed there: the lock's record would be written where it leads
            raise StateError(f"{lock_path} is a link to {os.path.realpath(lock_path)}: gridrun writes the runner lock "
                             f"there and never through a link; remove the link, then {again or then}")
        fds: list[int] = []
        made = False
        try:
            try:
                fds.append(os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666))
                made = True
            except FileExistsError:
                fds.append(os.open(lock_path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o666))
            _flock(fds[-1], required=True)
            fds.append(os.open(self.real.parent, os.O_RDONLY))
            if not _flock(fds[-1], required=False):
                os.close(fds.pop())  # not lockable here (NFS): the lock file alone holds it
        except BlockingIOError:
            for fd in fds:
                os.close(fd)
            try:
                holder = lock_path.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                holder = ""
            raise LockError(self._locked_out(holder, then=then, manifest=manifest, cancel=cancel, name=name,
                                             requests=requests)) from None
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                said = not_writable_said([lock_path], then=again or then, known=True)
                if said is not None:
                    raise StateError(f"cannot take the runner lock: {said}") from exc
            raise self._lock_unwritable(lock_path, exc) from exc
        try:
            os.ftruncate(fds[0], 0)
            os.pwrite(fds[0], _process_line(command="cancel" if cancel else "run", manifest=manifest,
                                            name=name).encode(), 0)
        except OSError as exc:  # a full disk: a lock file made here is not left empty
            if made:
                with suppress(OSError):
                    lock_path.unlink()
            for fd in fds:
                os.close(fd)
            raise self._lock_unwritable(lock_path, exc) from exc
        self._lock_fds = fds
        _held_here[self.real.parent.resolve()] = (None if manifest is None else Path(manifest).resolve(),
                                                  threading.get_ident())
        if self.schema < len(_MIGRATIONS):  # left as it was when opened, another runner holding it then
            try:
                with self._opening():
                    self._migrate()
            except BaseException:
                self.release_lock()
                raise
        _withdraw_start(self.real.parent)  # the lock says now that this run is starting

    def _lock_unwritable(self, lock_path: Path, exc: OSError) -> StateError:
        """The runner lock file `lock_path` could not be made or written (`exc`: a full disk, no inode left): the
        file, why, that nothing was recorded or sent, and what to do before the command is run again."""
        exc.filename, exc.filename2 = str(lock_path), None
        return StateError("cannot take the runner lock: " + write_problem(
            exc, then=f"`gridrun {self._then}` again", refused="nothing was recorded or sent"))

    def _locked_out(self, holder: str, *, then: str, manifest: str | Path | None, cancel: bool,
                    name: str | None = None, requests: Sequence[str] = ()) -> str:
        """Why the lock was refused: its holder (and the run it records, when the state has it, or the command
        and manifest the lock file names), and what to do. The manifests that share this state (those of one
        folder, by default) share its lock too: one held for another manifest says so, and, but to a cancel,
        that `state_dir:` gives a manifest a state of its own; one held for this manifest (a run not recorded
        yet, a cancel) says to wait for it, as a state of its own would know none of its jobs."""
        found = _holder(holder)
        # a state made as the lock was found held is left unmigrated, with no table yet (`__init__`)
        row = None if found is None or self.schema < 1 else self.db.execute(
            "SELECT id, manifest_name, manifest_path FROM runs WHERE status='running' AND pid=? AND host=?"
            " ORDER BY id DESC LIMIT 1",
            (found.pid, found.host)).fetchone()
        shown = found.process if found is not None else holder.partition("\n")[0]
        if found is None and not shown:  # no holder line (the lock file deleted, made anew): the run going on
            row, shown = self._running_here()
        shared = f" (its state.db is {self.real}, which it shares)" if self.real != self.path else ""
        held = f"{self.path.parent}{shared}: another gridrun runner holds this state ({shown or 'another process'})"
        wait = (f"stop it, then {then}" if cancel else
                f"wait for it to finish, or stop it, then {then} (`gridrun status` works meanwhile)")
        # The line names this process: a run of another of its threads holds the lock (unless this process held it
        # before and the line is the one it left, read before the holder, another process, wrote its own).
        here = found is not None and (found.pid, found.host) == (os.getpid(), socket.gethostname())
        theirs, thread = _held_here.get(self.real.parent.resolve(), (None, None))
        if here and thread not in (None, threading.get_ident()):
            return self._locked_here(row, theirs, manifest=manifest, then=then, cancel=cancel)
        if row is not None and manifest is not None and same_manifest(
                row["manifest_path"], manifest, recorded_name=row["manifest_name"], name=name):
            return f"{held}: run {row['id']} of this manifest{self._as(row['manifest_path'], manifest)}; {wait}"
        if row is None and found is not None and manifest is not None and found.same_file(manifest, name):
            return self._held_for_this_manifest(found, then=then, cancel=cancel)
        if cancel and row is not None and name is not None and row["manifest_name"] != name:
            return self._cancel_waits(row, name, requests, f"{held}: run {row['id']} of {row['manifest_path']}")
        if row is not None:
            who = f": run {row['id']} of {row['manifest_path']}, which shares this state (one runner at a time)"
        elif found is not None and found.manifest is not None:
            what = "a `gridrun cancel`" if found.command == "cancel" else "a run starting"
            who = f": {what} of {found.manifest}, which shares this state (one runner at a time)"
        else:
            who = " (the manifests of one folder share its state, one runner at a time)"
        own = "; or give this manifest a `state_dir:` of its own (it then reuses none of these videos)"
        return f"{held}{who}: {wait}{'' if cancel else own}"

    @staticmethod
    def _as(recorded: str, manifest: str | Path) -> str:
        """How a run of this manifest recorded the manifest's path, where another path than `manifest` (a link to
        it, its folder since renamed): ` (as /the/path)`; else nothing."""
        return "" if Path(recorded) == Path(manifest) else f" (as {recorded})"

    def _running_here(self) -> tuple[Any, str]:
        """The latest run the state records as running in a process of this machine that lives still, and that
        process (`pid N on HOST`), for a lock whose file names no holder (deleted by hand during the run, and made
        anew empty); (None, "") when there is none."""
        if self.schema < 1:
            return None, ""
        row = self.db.execute(
            "SELECT id, manifest_name, manifest_path, pid, host FROM runs WHERE status='running' AND host=?"
            " AND pid IS NOT NULL ORDER BY id DESC LIMIT 1", (socket.gethostname(),)).fetchone()
        if row is None or self.run(row["id"]).process_gone():
            return None, ""
        return row, f"pid {row['pid']} on {row['host']}"

    def _cancel_waits(self, row: Any, name: str, requests: Sequence[str], held: str) -> str:
        """`_locked_out` for a cancel of the manifest `name` while `row`, a run of another manifest sharing this
        state, holds it. Its jobs are not that run's: a cancel waits for it only because one runner at a time
        writes the state, unless that run follows some of them (requests the two manifests share, `requests`
        their hashes), which it writes as it goes. A request in flight in that run only, never in a run of this
        manifest, is that manifest's to cancel."""
        flying = (S.SUBMITTING.value, S.SUBMITTED.value, S.RUNNING.value)
        marks = ",".join("?" * len(flying))
        theirs = {r[0] for r in self.db.execute(
            f"SELECT j.id FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id WHERE rj.run_id=? AND j.state IN ({marks})",
            (row["id"], *flying))}
        mine = {r[0] for r in self.db.execute(
            "SELECT DISTINCT j.id FROM run_jobs rj JOIN runs r ON r.id = rj.run_id JOIN jobs j ON j.id = rj.job_id"
            f" WHERE r.manifest_name=? AND j.state IN ({marks})", (name, *flying))}
        shared = len(theirs & mine)
        only_theirs = len(theirs & {r["id"] for r in self.jobs_by_hash(list(requests)).values()} - mine)
        stop = "a second Ctrl-C in its terminal ends it with its jobs left in flight"
        said = [f"{held}, a manifest that shares this state"]
        if shared:
            said.append(f"that run follows {shared} of this manifest's jobs in flight (requests the two manifests "
                        f"share), writing their states as it goes: stop it, then cancel ({stop})")
        elif mine:
            said.append("one runner at a time writes this state, cancel too: wait for that run to end, then cancel "
                        f"(this manifest's jobs in flight go on rendering meanwhile); or stop it, then cancel ({stop})")
        else:
            said.append("this manifest has no job in flight of its own")
        if only_theirs:
            said.append(f"{only_theirs} of the requests it plans are in flight in that run only, sent for that "
                        f"manifest: they are its to cancel (`gridrun cancel {typed(row['manifest_path'])}` once that "
                        f"run ends, or stop it: {stop})")
        return "; ".join(said)

    def _locked_here(
        self, row: Any, theirs: Path | None, *, manifest: str | Path | None, then: str, cancel: bool = False,
    ) -> str:
        """Why the lock was refused, its holder a run of another thread of this very process, for manifest
        `theirs` (`row`: its run, once recorded): no other runner to stop, the run to wait for, or to end as a
        program ends the `runner.run` of one of its threads (its `stop` and `detach` Events: it has no terminal to
        take a Ctrl-C), and, for another manifest's, that `state_dir:` gives this one a state of its own."""
        theirs = Path(row["manifest_path"]) if row is not None else theirs
        held = f"{self.path.parent}: " + ("a run (starting)" if row is None else f"run {row['id']}")
        if cancel:  # its jobs are the ones to cancel: it lets go of them first
            wait = ("stop it, then cancel: set the `detach` Event given to its `runner.run` (it ends at once, its jobs "
                    "left in flight for the cancel), or its `stop` Event (it ends once the jobs it sent are finished)")
        else:
            wait = (f"wait for it to end, then {then} (setting the `stop` Event given to its `runner.run` ends it once "
                    "the jobs it sent are finished, its `detach` Event at once, those jobs left in flight)")
        if theirs is None:
            return f"{held} in this process (another thread) holds this state: {wait}"
        if manifest is not None and Path(manifest).resolve() == theirs.resolve():
            return f"{held} of this manifest in this process (another thread) holds this state: {wait}"
        return (f"{held} of {theirs} in this process (another thread) holds this state, which the two manifests "
                f"share (one runner at a time): {wait}; or give this manifest a `state_dir:` of its own (it then "
                "reuses none of these videos)")

    def _held_for_this_manifest(self, found: Holder, *, then: str, cancel: bool) -> str:
        """`_locked_out` for a lock the lock file says was taken for this manifest by a process with no run
        recorded: a run of it starting (it records its run once it has planned and asked the provider's balance),
        or a `gridrun cancel` of it (it ends once the provider has answered for each job in flight)."""
        where = f"{self.path.parent}: "
        if found.command == "cancel":
            again = "`gridrun cancel` again if anything is left in flight" if cancel else then
            return (f"{where}a `gridrun cancel` of this manifest ({found.process}) holds this state: wait for it to "
                    f"end (it asks the provider about each job in flight), then {again}")
        starting = f"{where}another run of this manifest ({found.process}) holds this state, starting"
        if cancel:
            return f"{starting}: stop it, then {then}"
        return (f"{starting}: wait for it to finish (`gridrun status --watch` follows it), or stop it, then {then}")

    def lock_outputs(self, folder: Path, *, manifest: str | Path, field: str, write: bool = True) -> None:
        """Take the lock of the output folder this run writes into (`.runs/lock` in it, `.runs/` made), held and released with
        the runner lock (`acquire_lock` first): two manifests of their own `state_dir:` writing one folder would
        download into the same files and replace each other's videos. The lock file records this state folder
        and `manifest` (`outputs_writer`). Refused with who holds it and, `field` the manifest's field naming the
        folder (`outputs_dir`, or `name`: outputs/<name>), how to give the manifest a folder of its own. A file
        system that cannot lock (a network share) leaves the folder unlocked: the runner lock still holds, and
        `plan` and `run` warn of the other state that the file records. `write` False: the record the file holds is
        left as it is until `_note_outputs_run` writes this run's (a `gridrun recover`, whose run is recorded in
        one transaction: one that fails leaves the lock naming the run it named, and the state refused as before).

        :raises LockError: another run holds the folder.
        :raises OSError: the lock file cannot be made or written.
        """
        lock_path = folder / ".runs" / "lock"
        keep_out_of_version_control(lock_path.parent, RUNS_GITIGNORE)
        try:  # never through a link (`refuse_own_links` refused one there before)
            fd, made = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666), True
        except FileExistsError:
            fd, made = os.open(lock_path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o666), False
        try:
            _flock(fd, required=False)  # not lockable here: the record below still makes `plan` warn
        except BlockingIOError:
            os.close(fd)
            raise LockError(_outputs_locked_out(folder, outputs_writer(folder), field=field)) from None
        self._lock_fds.append(fd)
        now = time.time()  # `since` as the local time (read by an older gridrun), `started` the moment itself
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": local_time(now, offset=False),
                  "started": round(now, 3), "state_dir": str(self.path.parent.resolve()),
                  "manifest": str(Path(manifest).resolve()), **self._key_part()}
        if write:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(record).encode(), 0)
            except OSError as exc:  # a full disk: a lock file made here is not left empty
                self._lock_fds.remove(fd)
                if made:
                    with suppress(OSError):
                        lock_path.unlink()
                os.close(fd)
                exc.filename = exc.filename or str(lock_path)
                raise
        self._outputs_lock = (fd, record)

    def _key_part(self) -> dict[str, str]:
        """The lock record's `key_part`, the digest of this state's key part (`key_part_digest`), which a gridrun
        before `key_part_value` reads, and `key_part_value`, the part itself: a state lost with jobs in flight and
        no video of them downloaded yet is rebuilt by `gridrun recover` under the part the provider knows their
        keys by, so the next run collects them instead of paying for them again. Read again where a recover
        adopted a lost state's since the lock was taken; none for a state of a schema without one."""
        if self.schema < KEYS_SALTED_AT:
            return {}
        try:
            salt = self.key_salt()
            return {"key_part": key_part_digest(salt), "key_part_value": salt}
        except (sqlite3.Error, TypeError):
            return {}

    def _note_outputs_run(self, run_id: int) -> None:
        """Add the run this store recorded to the output folder's lock record it holds (`run`): a state that later
        reads a run above its last there has lost the records of that run (`check_not_behind`). The lock file is
        this machine's (kept out of version control): unlike the manifest copies, which a `git pull` or a copy
        brings with fresh times, it is written by this state's runs alone. Best effort: the record is evidence
        only when it is there."""
        if self._outputs_lock is None:
            return
        fd, record = self._outputs_lock
        record = {**record, **self._key_part(), "run": run_id}
        data = json.dumps(record).encode()
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        except OSError:
            return
        self._outputs_lock = (fd, record)

    def last_change(self, run_id: int, manifest_name: str) -> float | None:
        """When the state last recorded anything a snapshot of the run `run_id` tells (a run of its manifest
        started, seen alive or ended, one of the run's jobs or their attempts moved, an event of a run of its
        manifest), by the times it holds: the same for as long as none of that is written, whatever the other
        manifests sharing the state do; None when there is no such run."""
        seen = ", coalesce(max(seen_at), 0)" if self.schema >= RUN_SEEN_AT_SINCE else ""  # an older state, as it is
        row = self.db.execute(
            f"SELECT max(coalesce((SELECT max(max(started_at), coalesce(max(ended_at), 0){seen})"
            " FROM runs WHERE manifest_name = :name OR id = :run), 0),"
            " coalesce((SELECT max(j.updated_at) FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id"
            " WHERE rj.run_id = :run), 0),"
            " coalesce((SELECT max(max(a.started_at), coalesce(max(a.ended_at), 0)) FROM run_jobs rj"
            " JOIN attempts a ON a.job_id = rj.job_id WHERE rj.run_id = :run), 0),"
            " coalesce((SELECT max(at) FROM events WHERE run_id IN"
            " (SELECT id FROM runs WHERE manifest_name = :name OR id = :run)), 0))",
            {"run": run_id, "name": manifest_name}).fetchone()
        return float(row[0]) if row and row[0] else None

    def release_lock(self) -> None:
        """Let the runner lock and the output folder's go: every descriptor is closed, whatever is raised while
        one is (a KeyboardInterrupt), so that this process holds neither once this returns or raises."""
        fds, self._lock_fds = self._lock_fds, []
        self._outputs_lock = None
        try:
            if fds:
                _held_here.pop(self.real.parent.resolve(), None)
        finally:
            _close_all(fds)

    # -- runs ---------------------------------------------------------------------------------------
    def start_run(
        self,
        *,
        manifest_name: str,
        manifest_path: str,
        manifest_copy: str,
        outputs_dir: str,
        provider: str,
        model: str,
        axes: Sequence[str],
        budget_micros: int | None,
        argv: Sequence[str] = (),
        jobs: Sequence[Mapping[str, Any]] = (),
        least_id: int | None = None,
        note_outputs: bool = True,
        key_print: str | None = None,
    ) -> int:
        """Record a new run, with its planned `jobs` (as `add_jobs` takes them, their ids then in `job_ids`) in the
        same transaction: `status` from another process never finds the run going on without its jobs. Runs
        left `running` by a dead process become `crashed`. `least_id`: the lowest id the run may have (a recover
        numbers its run above the runs its state lost, whose files the output folder holds: `runner.recover`).
        `note_outputs`: the output folder's lock names the run at once (`_note_outputs_run`); else the caller has it
        do so once its transaction committed. `key_print`: the fingerprint of the API key the run sends with
        (`m014_run_key_print`), None when it sends none.

        `run_id` is set before the commit: a Ctrl-C whose handler runs as the commit returns (its fsync is where a
        signal most often waits) still finds the run, whose end the caller then records; a transaction rolled back
        leaves it None, as no run was recorded."""
        now, began = self.clock(), self.monotonic()
        try:
            with self._tx():
                dead = [r[0] for r in self.db.execute("SELECT id FROM runs WHERE status='running'")]
                for rid in dead:  # as they left their jobs: nothing has moved them since
                    self._keep_final(rid)
                for rid in dead:
                    self.db.execute("UPDATE runs SET status='crashed', ended_at=? WHERE id=?",
                                    (min(now, self._last_record(rid)), rid))
                given = least_id if least_id is not None and least_id > self.db.execute(
                    "SELECT COALESCE(MAX(id), 0) + 1 FROM runs").fetchone()[0] else None  # else the next id
                cur = self.db.execute(
                    "INSERT INTO runs (id, manifest_name, manifest_path, manifest_copy, outputs_dir, provider, model,"
                    " axes, started_at, status, budget_micros, pid, host, argv) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (given, manifest_name, manifest_path,
                     manifest_copy, outputs_dir, provider, model, _json(list(axes)), now, "running", budget_micros,
                     os.getpid(), socket.gethostname(), _json(list(argv))),
                )
                run_id = int(cur.lastrowid or 0)
                if key_print is not None and self.schema >= KEY_PRINTS_SINCE:
                    self.db.execute("UPDATE runs SET key_print=? WHERE id=?", (key_print, run_id))
                self._event(run_id, None, "run-started", {"pid": os.getpid()})
                self.job_ids = self._add_jobs(run_id, jobs, now) if jobs else {}
                self.run_id, self.run_began = run_id, began
        except BaseException:
            if self.run_id is not None and not self._recorded(self.run_id):
                self.run_id = self.run_began = None
            raise
        if note_outputs:
            self._note_outputs_run(run_id)
        return run_id

    def _last_record(self, run_id: int) -> float:
        """When the run's own process last recorded anything (a job's move, an event, that it was alive:
        `Snapshot.last_record` for a run gone): the end of a run whose process died, not when the next run found it
        dead, nor when a `gridrun cancel` recorded what became of its jobs (`_others_since`)."""
        until = self._others_since(run_id)
        row = self.db.execute(
            "SELECT MAX(r.started_at, COALESCE(r.seen_at, 0),"
            " COALESCE((SELECT MAX(at) FROM events WHERE run_id = r.id AND at < :until), 0),"
            " COALESCE((SELECT MAX(MAX(COALESCE(j.submitted_at, 0),"
            "  CASE WHEN j.completed_at < :until THEN j.completed_at ELSE 0 END,"
            "  CASE WHEN j.downloaded_at < :until THEN j.downloaded_at ELSE 0 END))"
            "  FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id WHERE rj.run_id = r.id), 0))"
            " FROM runs r WHERE r.id=:run",
            {"run": run_id, "until": float("inf") if until is None else until}).fetchone()
        return float(row[0])

    def _others_since(self, run_id: int) -> float | None:
        """For a run recorded as running: when another process first wrote in the state since the run started
        (`cancel_began`: a `gridrun cancel` takes the runner lock, held by a run as long as it runs, so only once
        the run's process is gone). Nothing recorded from then on, under the run's id or of its jobs, is the run's
        own. None: nothing did, or the run ended (its end is its own record)."""
        row = self.db.execute(
            "SELECT (SELECT MIN(e.at) FROM events e WHERE e.kind=? AND e.at >= r.started_at) FROM runs r"
            " WHERE r.id=? AND r.status='running' AND r.ended_at IS NULL", (CANCEL_BEGAN, run_id)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def cancel_asked(self, job_id: int) -> bool:
        """Whether `gridrun cancel` asked the provider to cancel the video the job's current attempt is following
        (event `cancel-asked`, recorded just before the request is sent)."""
        row = self.db.execute("SELECT provider_id FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None or not row["provider_id"]:
            return False
        for (detail,) in self.db.execute("SELECT detail FROM events WHERE job_id=? AND kind=?", (job_id, CANCEL_ASKED)):
            with suppress(ValueError, TypeError, AttributeError):
                if json.loads(detail or "{}").get("provider_id") == row["provider_id"]:
                    return True
        return False

    def cancel_began(self) -> None:
        """Record that a `gridrun cancel` holding the runner lock starts to record what became of jobs in flight:
        a run whose process died before it records nothing after this (`_others_since`)."""
        with self._tx():
            self._event(None, None, CANCEL_BEGAN, {"pid": os.getpid()})

    def _recorded(self, run_id: int) -> bool:
        """The run is in the database (committed); False where the database cannot be read either."""
        try:
            return self.db.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is not None
        except sqlite3.Error:
            return False

    def end_run(self, run_id: int, status: str, *, stopped_by: Mapping[str, str] | None = None) -> None:
        """Record how the run ended, and each of its jobs as it left them (`final`); once: a run already ended
        keeps its end. `stopped_by`: the cause it stopped on, not its jobs' ({"cause": ..., "note": ...}, a full
        disk), kept beside it (`RUN_STOPPED_BY`) and in its end event."""
        self.flush()
        with self._tx():
            if self.db.execute("SELECT 1 FROM runs WHERE id=? AND status='running'", (run_id,)).fetchone() is None:
                return
            self._keep_final(run_id)
            self.db.execute("UPDATE runs SET status=?, ended_at=? WHERE id=?", (status, self.clock(), run_id))
            if self.schema >= KEYS_SALTED_AT:  # its next check and last answer: of a run going on only
                self.db.execute("DELETE FROM meta WHERE name IN (?, ?, ?)",
                                (f"{RUN_CHECKS}{run_id}", f"{RUN_EXPECTED_END}{run_id}", f"{RUN_PAUSED}{run_id}"))
            if self.schema >= RUN_DURATION_SINCE and run_id == self.run_id and self.run_began is not None:
                # the wall clock may have been stepped since the start: `ended_at - started_at` is off by that
                self.db.execute("UPDATE runs SET duration=? WHERE id=?",
                                (max(0.0, self.monotonic() - self.run_began), run_id))
            if stopped_by and self.schema >= KEYS_SALTED_AT:
                self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                                (f"{RUN_STOPPED_BY}{run_id}", _json(dict(stopped_by))))
            self._event(run_id, None, "run-ended", {"status": status, **({"stopped_by": stopped_by["cause"]}
                                                                         if stopped_by else {})})

    def seen(self, run_id: int, checks: tuple[Any, ...] | None = None) -> None:
        """The run is alive now (`runs.seen_at`); committed by the next `flush()`, like a lazy move. `checks`: when
        (wall clock) the run next asks the provider about a job while every job in flight waits for its poll, and
        when the provider last answered one of its requests (None each: not so, not yet), kept for `status` in
        another process (`run_checks`) in the state's meta table, beside the run's row, which has no column for
        them; and, a third where given, when its jobs are expected to have ended by their render times while it
        has no pace yet (None: it has one, or nothing is expected), kept in a row of its own (`run_expected_end`);
        and, a fourth where given, the pause every request waits out as the provider asked, (when it ends, the HTTP
        status that asked) or None, in a row of its own too (`run_paused`)."""
        with self._deferred():
            self.db.execute("UPDATE runs SET seen_at=? WHERE id=?", (self.clock(), run_id))
            if checks is not None and self.schema >= KEYS_SALTED_AT:
                self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                                (f"{RUN_CHECKS}{run_id}", _json(list(checks[:2]))))
                for row, value in zip((RUN_EXPECTED_END, RUN_PAUSED), checks[2:]):  # those given, each its own row
                    self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                                    (f"{row}{run_id}", _json(value)))

    def run_checks(self, run_id: int) -> tuple[float | None, float | None]:
        """(next check, last answer) of a run going on, as its heartbeat last recorded them (`seen`); (None, None)
        when it recorded none (a run of an older gridrun, or one that has not yet had a heartbeat)."""
        if self.schema < KEYS_SALTED_AT:
            return None, None
        row = self.db.execute("SELECT value FROM meta WHERE name=?", (f"{RUN_CHECKS}{run_id}",)).fetchone()
        with suppress(ValueError, TypeError, IndexError):
            if row is not None:
                at, answered = json.loads(row[0])
                return (None if at is None else float(at)), (None if answered is None else float(answered))
        return None, None

    def run_expected_end(self, run_id: int) -> float | None:
        """When (wall clock) the jobs of a run going on are expected to have ended by their render times, as its
        heartbeat last recorded it while it had no pace yet (`seen`); None when it recorded none, or has a pace."""
        if self.schema < KEYS_SALTED_AT:
            return None
        row = self.db.execute("SELECT value FROM meta WHERE name=?", (f"{RUN_EXPECTED_END}{run_id}",)).fetchone()
        with suppress(ValueError, TypeError):
            value = None if row is None else json.loads(row[0])
            return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        return None

    def run_paused(self, run_id: int) -> tuple[float, int] | None:
        """(when it ends, wall clock; the HTTP status that asked for it) of the pause every request of a run going on
        waits out as the provider asked, as its heartbeat last recorded it (`seen`); None when there was none worth
        saying then, or it recorded none (an older gridrun)."""
        if self.schema < KEYS_SALTED_AT:
            return None
        row = self.db.execute("SELECT value FROM meta WHERE name=?", (f"{RUN_PAUSED}{run_id}",)).fetchone()
        with suppress(ValueError, TypeError):
            value = None if row is None else json.loads(row[0])
            if isinstance(value, list) and len(value) == 2 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                return float(value[0]), int(value[1])
        return None

    def _keep_final(self, run_id: int) -> None:
        """Each job of the run, and its money, as it leaves them (in the caller's transaction)."""
        self._write_final(run_id)
        spent, reserved = self.money(run_id)
        self.db.execute("UPDATE runs SET final_money=? WHERE id=?",
                        (_json({"spent": spent, "reserved": reserved}), run_id))

    def run(self, run_id: int, manifest_name: str | None = None) -> RunRecord:
        """The run `run_id`; with `manifest_name`, only a run of that manifest: run ids count the runs of every
        manifest sharing the state folder, so an id of another one's is a slip, not a run to show as this one's.

        :raises NotRecordedError: no such run, or one of another manifest (the message names it, and the runs
            of `manifest_name`).
        """
        # An id past SQLite's integers (--run 99999999999999999999) is no run either, not an OverflowError.
        in_range = SQLITE_INT_MIN <= run_id <= SQLITE_INT_MAX
        row = self.db.execute(f"SELECT {self._cols('runs')} FROM runs WHERE id=?", (run_id,)).fetchone() if in_range else None
        if row is None:
            raise NotRecordedError(f"{self.path}: no run {run_id}; {self._runs_recorded(manifest_name)}")
        record = self._run_record(row)
        if manifest_name is not None and record.manifest_name != manifest_name:
            raise NotRecordedError(
                f"{self.path}: run {run_id} is a run of {record.manifest_name} ({record.manifest_path}), not of "
                f"{manifest_name} (run ids count the runs of every manifest sharing this state folder); "
                f"{self._runs_recorded(manifest_name)}")
        return record

    def _runs_recorded(self, manifest_name: str | None = None) -> str:
        """The ids of the runs recorded (of `manifest_name`), as an error names them."""
        if manifest_name is None:
            ids = [r[0] for r in self.db.execute("SELECT id FROM runs ORDER BY id")]
        else:
            ids = [r[0] for r in self.db.execute("SELECT id FROM runs WHERE manifest_name=? ORDER BY id", (manifest_name,))]
        of = "" if manifest_name is None else f" of {manifest_name}"
        if not ids:
            return f"no run{of} recorded" + ("" if manifest_name is None else f"; {self._never_ran(manifest_name)}")
        shown = ", ".join(map(str, ids if len(ids) <= 12 else [*ids[:5], "…", *ids[-5:]]))
        # the manifest given, else the one of the name that ran last
        path = None if manifest_name is None else (self.manifest_path,) if self.manifest_path else self.db.execute(
            "SELECT manifest_path FROM runs WHERE manifest_name=? ORDER BY id DESC LIMIT 1", (manifest_name,)).fetchone()
        which = typed(path[0]) if path else f"--state {typed(self.path.parent)}"
        one = len(ids) == 1
        return f"{'run' if one else 'runs'}{of} recorded: {shown} (`gridrun status {which} --runs` lists {'it' if one else 'them'})"

    def not_recorded(self, manifest_name: str | None) -> NotRecordedError:
        """The error for a state with no run (of `manifest_name`) recorded: for a manifest, what to run first, and
        the other manifests whose runs the state holds (`_never_ran`)."""
        if manifest_name is None:
            return NotRecordedError(f"{self.path}: no run recorded")
        pid = self._run_starting(manifest_name)
        if pid is not None:  # it holds the lock, or plans: what it records is there in a moment
            return RunStartingError(f"{self.path}: no run of {manifest_name} recorded yet; a run is starting (pid "
                                    f"{pid}), recorded once it has planned and asked the provider's balance: try "
                                    "again in a moment", pid=pid)
        return NotRecordedError(f"{self.path}: no run recorded for {manifest_name}; {self._never_ran(manifest_name)}")

    def _run_starting(self, manifest_name: str) -> int | None:
        """The pid of a run or retry of `manifest_name` starting on this machine, as `status` tells it: planning (its STARTING file), or holding the runner lock (the lock file naming it) before it
        records its run; None when there is none (a cancel's lock, another manifest's, a lock nobody holds)."""
        home = self.path.parent
        starting = start_record(home)
        locked = lock_record(home)
        if locked is not None and runner_lock_free(state_home(home) / "lock"):
            locked = None  # its last holder, living on, let go of it
        pid = next((h.pid for h in (starting, locked)
                    if h is not None and h.command != "cancel" and h.of(manifest_name) is not False), None)
        latest = None if pid is None else self.latest_run()
        return None if latest is not None and latest.pid == pid else pid  # recorded its run: another manifest's

    def _never_ran(self, manifest_name: str) -> str:
        """What to do about a manifest with no run recorded here: run it first (the manifest given, when known);
        and, when the state holds runs of other manifests (sharing the state folder), their names and how to list
        them (a slip of the manifest, or of its `name:`, shows here)."""
        given = self.manifest_path
        text = runs_it_first(given) if given else "`gridrun run MANIFEST` runs it first"
        rows = self.db.execute("SELECT manifest_name, COUNT(*) FROM runs WHERE manifest_name != ?"
                               " GROUP BY manifest_name ORDER BY MAX(id) DESC", (manifest_name,)).fetchall()
        if not rows:
            return text
        names = ", ".join(f"{visible(str(name))} ({n:,} run{'' if n == 1 else 's'})" for name, n in rows[:5])
        more = f" and {len(rows) - 5:,} more" if len(rows) > 5 else ""
        one = len(rows) == 1 and rows[0][1] == 1
        held = ("a run of another manifest" if one else
                f"runs of {'another manifest' if len(rows) == 1 else 'other manifests'}")
        return (f"{text}; this state holds {held}: {names}{more} (`gridrun status --state "
                f"{typed(self.path.parent)} --runs` lists {'it' if one else 'them'})")

    def runs(self, manifest_name: str | None = None) -> list[RunRecord]:
        """Runs, newest first."""
        if manifest_name is None:
            rows = self.db.execute(f"SELECT {self._cols('runs')} FROM runs ORDER BY id DESC").fetchall()
        else:
            rows = self.db.execute(f"SELECT {self._cols('runs')} FROM runs WHERE manifest_name=? ORDER BY id DESC", (manifest_name,)).fetchall()
        stops = self._stops()
        return [self._run_record(r, stops) for r in rows]

    def _stops(self, run_id: int | None = None) -> dict[int, dict[str, str]]:
        """The causes runs ended on, not their jobs' (`end_run`'s `stopped_by`), by run id: of `run_id` only, or of
        every run (a few rows: only a run that stopped so has one)."""
        if self.schema < KEYS_SALTED_AT:
            return {}
        if run_id is None:
            rows = self.db.execute("SELECT name, value FROM meta WHERE name LIKE ?", (f"{RUN_STOPPED_BY}%",)).fetchall()
        else:
            rows = self.db.execute("SELECT name, value FROM meta WHERE name=?", (f"{RUN_STOPPED_BY}{run_id}",)).fetchall()
        stops: dict[int, dict[str, str]] = {}
        for name, value in rows:
            with suppress(ValueError, TypeError):
                stop = json.loads(value)
                if isinstance(stop, dict) and isinstance(stop.get("cause"), str):
                    stops[int(name[len(RUN_STOPPED_BY):])] = {k: str(v) for k, v in stop.items() if isinstance(v, str)}
        return stops

    def latest_run(self, manifest_name: str | None = None) -> RunRecord | None:
        runs = self.runs(manifest_name)
        return runs[0] if runs else None

    def latest_run_of_folder(self, manifest_name: str | None, folder: Path | None) -> RunRecord | None:
        """The manifest's latest run as its output folder `folder` takes it (None: `_outputs_dir`, the folder of
        the manifest the store is opened for): the latest, unless that run wrote another checkout's folder, still
        there, whose lock names this very state file (`written_by_state`: manifests in two checkouts naming one
        `state_dir:`); then the newest run that wrote `folder` (None: none did). A folder a copy of this state
        came from names the original state file, so a copied project's latest run stays its latest."""
        latest = self.latest_run(manifest_name)
        folder = self._outputs_dir if folder is None else folder
        if (latest is None or folder is None or _same_folder(latest.outputs_dir, folder)
                or not os.path.isdir(latest.outputs_dir) or not written_by_state(latest.outputs_dir, self.path)):
            return latest
        return next((r for r in self.runs(manifest_name) if _same_folder(r.outputs_dir, folder)), None)

    def running_run_of(self, pid: int, host: str) -> RunRecord | None:
        """The latest run recorded as running by process `pid` on `host`, if any (the runner lock's holder)."""
        row = self.db.execute(f"SELECT {self._cols('runs')} FROM runs WHERE status='running' AND pid=? AND host=? ORDER BY id DESC"
                              " LIMIT 1", (pid, host)).fetchone()
        return None if row is None else self._run_record(row)

    def latest_run_of_file(self, manifest_path: Path) -> RunRecord | None:
        """The latest run made from the manifest file at `manifest_path` (as runs record it, absolute), if any."""
        row = self.db.execute(f"SELECT {self._cols('runs')} FROM runs WHERE manifest_path=? ORDER BY id DESC LIMIT 1",
                              (str(manifest_path),)).fetchone()
        return None if row is None else self._run_record(row)

    def run_summaries(self, manifest_name: str | None = None) -> list[RunSummary]:
        """The runs (of `manifest_name`), newest first, each with its jobs in all, done and cached, and its money,
        as `snapshot` counts them: an ended run before its manifest's latest as it left them. One query counts
        the jobs of every run; only a run that ended before its jobs were kept (an older gridrun) is read whole."""
        self.flush()
        self.db.execute("BEGIN")
        try:
            runs = self.runs(manifest_name)
            last: dict[str, int] = {}
            for run in runs:  # newest first: the first of each manifest is its latest
                last.setdefault(run.manifest_name, run.id)
            where, args = ("", ()) if manifest_name is None else \
                (" WHERE rj.run_id IN (SELECT id FROM runs WHERE manifest_name=?)", (manifest_name,))
            out = self._summaries(runs, last, where, args)
            ends, simulated = self._where_runs_sent()
            since = self._done_since_end()
            return [dataclasses.replace(r, endpoints=ends.get(r.run.id, ()),
                                        spent_simulated_micros=simulated.get(r.run.id, 0),
                                        done_since_end=r.run.id in since) for r in out]
        finally:
            self.db.execute("COMMIT")

    def _done_since_end(self) -> set[int]:
        """The runs that ended `failed` and sent an attempt done only after their end: a later run collected what
        they left (a job of unknown outcome found at the provider), as `status --runs` says."""
        return {int(r[0]) for r in self.db.execute(
            "SELECT DISTINCT a.run_id FROM attempts a JOIN runs r ON r.id = a.run_id WHERE r.status = 'failed'"
            " AND a.state = ? AND a.ended_at > r.ended_at", (S.DONE.value,))}

    def _where_runs_sent(self) -> tuple[dict[int, tuple[tuple[str, bool], ...]], dict[int, int]]:
        """For every run: where it sent its creates (`run_endpoints`), and what simulators billed of its spending
        (`simulated_spent`); two queries for all runs."""
        if self.schema < TAKES_MADE_AT:
            return {}, self._simulated_by_run()
        ends: dict[int, dict[str, bool]] = {}
        for run_id, at, sim in self.db.execute(
            "SELECT run_id, endpoint, MAX(COALESCE(simulator, 0)) FROM attempts WHERE endpoint IS NOT NULL"
            " AND run_id IS NOT NULL GROUP BY run_id, endpoint ORDER BY MIN(id)",  # a take recovered: no run's
        ):
            ends.setdefault(int(run_id), {})[str(at)] = bool(sim)
        return {rid: tuple(e.items()) for rid, e in ends.items()}, self._simulated_by_run()

    def _simulated_by_run(self) -> dict[int, int]:
        """What simulators billed of each run's spending (`simulated_spent`), for every run in one query."""
        return {int(r[0]): int(r[1]) for r in self.db.execute(
            f"SELECT {self._billed_by}, SUM(billed_micros) FROM attempts WHERE billed_micros IS NOT NULL"
            f" AND {self._simulated} AND {self._billed_by} IS NOT NULL GROUP BY {self._billed_by}",
        )}

    def _run_summary(self, run: RunRecord) -> RunSummary:
        """The run's line of `status --runs` (`run_summaries`), inside a transaction: what the run's report header
        counts its done jobs by (cached, made earlier), so that the two agree."""
        last = self._last_run_id(run.manifest_name)
        return self._summaries([run], {run.manifest_name: run.id if last is None else last},
                               " WHERE rj.run_id=?", (run.id,))[0]

    def _origins_sql(self, where: str, one: str) -> str:
        """The run jobs `where` picks among `run_jobs rj JOIN jobs j`, each with where its video, once done, came from
        for the run (`origin`, one of `ORIGINS`), as every place that tells it reads it (`status --runs`, the
        report's header, cards and table, the export's figures of what the run made): the one answer a job has.

        `cached`: marked cached from an earlier run (`cached_from_run`), no re-render of it cancelled or failed in
        the run, nor one the run was to send and put back unsent (`_QUEUED_SQL`: made earlier, whatever stopped the
        run, as a run killed before sending it leaves it, not marked). `made`: an attempt of it the run saw billed made a video (`paid_in_run`'s count). `not-copied`:
        the run could not copy its video to its new path (a full disk), and left it untouched. `earlier`: else, a
        video an earlier run made, kept: its re-render here was cancelled or failed (put back as it was), or the run
        fetched it again (edited or deleted by hand). `one` (" AND e.run_id=?" or "") keeps the events read to the
        run `where` picks, its argument coming before `where`'s."""
        return (
            f"SELECT rj.run_id AS run_id, rj.job_id AS job_id, rj.cached_from_run AS cached_from_run,"
            f" j.state AS state, {'rj.final' if self.schema >= 4 else 'NULL'} AS final, CASE"
            f" WHEN rj.cached_from_run IS NOT NULL AND ev.kept IS NOT 1"
            f" AND (rj.run_id, rj.job_id) NOT IN ({_QUEUED_SQL}) THEN '{CACHED}'"
            f" WHEN EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = j.id AND a.state IN ({_MADE_A_VIDEO_SQL})"
            f" AND {self._billed_by} = rj.run_id) THEN '{MADE}'"
            f" WHEN ev.uncopied = 1 THEN '{NOT_COPIED}' ELSE '{EARLIER}' END AS origin"
            " FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id LEFT JOIN (SELECT e.run_id, e.job_id,"
            f" MAX(e.kind IN {_KEPT_KINDS}) AS kept, MAX(e.kind = 'not-copied') AS uncopied FROM events e"
            f" WHERE e.kind IN {_KEPT_KINDS[:-1]}, 'not-copied'){one} GROUP BY e.run_id, e.job_id) ev"
            f" ON ev.run_id = rj.run_id AND ev.job_id = rj.job_id{where}"
        )

    def force_unsent(self, manifest_name: str) -> tuple[int | None, frozenset[str]]:
        """The latest `--force` run of the manifest named `manifest_name` (None: none) and the hashes of the done
        jobs it was to render again (event `rerenders-queued`) that no attempt has been made for since it started:
        those a stop (its budget, a full disk, a kill) left as they were, which `run --force --resume` sends, and
        no others. A re-render sent, whatever came of it (rendered, failed, cancelled, of unknown outcome), has
        its attempt; one that never reached the provider has none (its attempt voided, its reset undone). A run
        recorded before the event said whether it was forced counts as one when its command line had --force."""
        found: int | None = None
        ids: set[int] = set()
        for run_id, detail, argv in self.db.execute(
            "SELECT e.run_id, e.detail, r.argv FROM events e JOIN runs r ON r.id = e.run_id"
            " WHERE e.kind = 'rerenders-queued' AND r.manifest_name = ? ORDER BY e.run_id DESC, e.id",
            (manifest_name,),
        ):
            if found is not None and run_id != found:
                break
            try:
                said = json.loads(detail or "{}")
                forced = said["force"] if "force" in said else "--force" in json.loads(argv or "[]")
                jobs = [int(i) for i in said.get("jobs", ())]
            except (ValueError, TypeError, AttributeError):  # a detail not of this shape: not read as forced
                continue
            if forced is True:
                found = int(run_id)
                ids.update(jobs)
        if found is None:
            return None, frozenset()
        sent = {int(r[0]) for r in self.db.execute("SELECT DISTINCT job_id FROM attempts WHERE run_id >= ?",
                                                    (found,))}
        left = sorted(ids - sent)
        hashes: set[str] = set()
        for chunk, marks in _chunked(left):
            hashes.update(str(r[0]) for r in self.db.execute(f"SELECT hash FROM jobs WHERE id IN ({marks})", chunk))
        return found, frozenset(hashes)

    def _rerenders_queued(self, run_id: int) -> frozenset[int]:
        """The done jobs the run was to render again as it started (event `rerenders-queued`) that were not reset
        (each is, as it is sent, and a cancel's or a failure's put-back follows that) before the next run started:
        their ids. A later run's resets are not this run's: its page, history, says the same whatever came after."""
        ids: set[int] = set()
        since = None
        for at, detail in self.db.execute("SELECT id, detail FROM events WHERE run_id=? AND kind='rerenders-queued'",
                                          (run_id,)):
            try:
                ids.update(int(i) for i in json.loads(detail or "{}").get("jobs", ()))
            except (ValueError, TypeError, AttributeError):  # a detail not of this shape: nothing said of them
                continue
            since = at if since is None else min(since, at)
        if since is not None:  # the events after it and before the next run's start, read by their ids
            ids.difference_update(r[0] for r in self.db.execute(
                f"SELECT DISTINCT job_id FROM events WHERE id > ? AND {_RESET_KINDS} AND id < COALESCE((SELECT"
                " MIN(id) FROM events WHERE id > ? AND kind = 'run-started'), 1 << 62)", (since, since)))
        return frozenset(ids)

    def _origins(self, run_id: int) -> dict[int, str]:
        """The run's jobs, each with where its video, once done, came from for the run (`_origins_sql`): job id ->
        origin."""
        sql = self._origins_sql(" WHERE rj.run_id=?", " AND e.run_id=?")
        return {int(r[0]): str(r[1]) for r in self.db.execute(
            f"SELECT job_id, origin FROM ({sql})", (run_id, run_id))}

    def _summaries(self, runs: Sequence[RunRecord], last: Mapping[str, int], where: str,
                   args: tuple[Any, ...]) -> list[RunSummary]:
        """`runs` counted (`run_summaries`), `last` their manifests' latest runs, `where` (with `args`) the SQL
        that picks their jobs among `run_jobs rj`. Their done jobs are counted by their one answer of where each
        video came from (`_origins_sql`): those cached, made, not copied; the rest made earlier."""
        one, one_args = (" AND e.run_id=?", (runs[0].id,)) if len(runs) == 1 else ("", ())
        sql = self._origins_sql(where, one)
        # run id -> origin -> (jobs, done, done as the run left them, jobs the run left (`final`))
        final = ("SUM(json_extract(final, '$.state') = 'done'), COUNT(final)" if self.schema >= 4 else "0, 0")
        counted: dict[int, dict[str, tuple[int, int, int, int]]] = {}
        for rid, origin, *figures in self.db.execute(
                f"SELECT run_id, origin, COUNT(*), SUM(state = 'done'), {final} FROM ({sql}) GROUP BY run_id, origin",
                (*one_args, *args)):
            counted.setdefault(rid, {})[origin] = tuple(f or 0 for f in figures)
        out = []
        for run in runs:
            of_run = counted.get(run.id, {})
            jobs = sum(f[0] for f in of_run.values())
            done_by = {o: f[1] for o, f in of_run.items()}
            money = self.money(run.id)
            if run.ended_at is not None and run.id != last[run.manifest_name]:
                money = self._money_as_left(run.id, money)
                done_by = {o: f[2] for o, f in of_run.items()}
                if sum(f[3] for f in of_run.values()) < jobs:  # ended before its jobs were kept: as `_as_left`
                    left = self._as_left(run.id, tuple(job_record(r) for r in self.run_job_rows(run.id)),
                                         run.ended_at)
                    origins = self._origins(run.id)
                    of_done = [origins.get(j.id) for j in left if j.state == JobState.DONE.value]
                    done_by = {o: of_done.count(o) for o in ORIGINS}
            if done_by.get(EARLIER):  # a placeholder's failed render kept it done in the store: failed in the run
                done_by[EARLIER] = max(0, done_by[EARLIER] - self._placeholders_failed_in(run, last))
            done = sum(done_by.values())
            cached, made, not_copied = (done_by.get(o, 0) for o in (CACHED, MADE, NOT_COPIED))
            out.append(RunSummary(run=run, jobs=jobs, done=done, cached=cached, spent_micros=money[0],
                                  reserved_micros=money[1], made=made, not_copied=not_copied))
        return out

    def manifest_files(self, manifest_name: str) -> list[tuple[str, int, str]]:
        """The manifest files the runs of `manifest_name` were made from, each with the id and output folder of
        its latest run, newest first."""
        rows = self.db.execute(
            "SELECT manifest_path, MAX(id), outputs_dir FROM runs WHERE manifest_name=? GROUP BY manifest_path "
            "ORDER BY MAX(id) DESC", (manifest_name,)).fetchall()
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    def wrote_into(self, folder: Path) -> bool:
        """Whether a run of this state was recorded writing into the output folder `folder` (by this path, or by
        another that reaches the same folder: a link)."""
        return any(_same_folder(recorded, folder)
                   for (recorded,) in self.db.execute("SELECT DISTINCT outputs_dir FROM runs"))

    def folder_writers(self, folder: Path, *, besides: str) -> list[tuple[str, str, int]]:
        """The manifests of other names than `besides` whose latest run here wrote into the output folder `folder`
        (`wrote_into`'s test), newest first: each one's name, manifest file and latest run."""
        rows = self.db.execute(
            "SELECT manifest_name, manifest_path, id, outputs_dir FROM runs r WHERE manifest_name != ? AND "
            "id = (SELECT MAX(id) FROM runs WHERE manifest_name = r.manifest_name) ORDER BY id DESC", (besides,))
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows if _same_folder(r[3], folder)]

    # -- jobs ---------------------------------------------------------------------------------------
    def add_jobs(self, run_id: int, jobs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Attach planned jobs to a run, creating rows for new hashes; returns hash -> job id.

        Each mapping has: hash, key, sweep, values, params, request, output_path, cost_estimate_micros,
        width, height, duration.
        """
        with self._tx():
            return self._add_jobs(run_id, jobs, self.clock())

    def _add_jobs(self, run_id: int, jobs: Sequence[Mapping[str, Any]], now: float) -> dict[str, int]:
        """`add_jobs` in the open transaction."""
        known = {h: int(r["id"]) for h, r in self.jobs_by_hash([j["hash"] for j in jobs]).items()}
        fresh: dict[str, Mapping[str, Any]] = {}
        for job in jobs:
            if job["hash"] not in known:
                fresh.setdefault(job["hash"], job)
        self.db.executemany(
            "INSERT INTO jobs (hash, key, sweep, vals, params, request, state, output_path,"
            " cost_estimate_micros, width, height, duration, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (job["hash"], job["key"], job.get("sweep"), _json(job["values"]), _json(job["params"]),
                 _json(job.get("request", {})), S.PLANNED.value, str(job["output_path"]),
                 int(job["cost_estimate_micros"]), job.get("width"), job.get("height"), job.get("duration"),
                 now, now)
                for job in fresh.values()
            ],
        )
        self.db.executemany(
            "UPDATE jobs SET key=?, sweep=?, vals=?, updated_at=? WHERE id=?",
            [(job["key"], job.get("sweep"), _json(job["values"]), now, known[job["hash"]])
             for job in jobs if job["hash"] in known],
        )
        # Where a job not yet done will save its video: the output template may have changed (a done
        # job's path moves only with its file, `set_output`).
        self.db.executemany(
            "UPDATE jobs SET output_path=? WHERE id=? AND state!='done'",
            [(str(job["output_path"]), known[job["hash"]]) for job in jobs if job["hash"] in known],
        )
        ids = {**known, **{h: int(r["id"]) for h, r in self.jobs_by_hash(list(fresh)).items()}}
        self.db.executemany(
            "INSERT OR REPLACE INTO run_jobs (run_id, job_id, key, position) VALUES (?,?,?,?)",
            [(run_id, ids[job["hash"]], job["key"], pos) for pos, job in enumerate(jobs)],
        )
        return ids

    def set_output(self, job_id: int, path: str | Path) -> None:
        """Record where a done job's video now is (copied for a changed output template, or put aside)."""
        with self._tx():
            self.db.execute("UPDATE jobs SET output_path=?, updated_at=? WHERE id=?", (str(path), self.clock(), job_id))

    def done_keys(self, hashes: Sequence[str]) -> dict[str, str]:
        """Of `hashes`, those of done jobs, each with its job's key."""
        out: dict[str, str] = {}
        for chunk, marks in _chunked(hashes):
            for row in self.db.execute(f"SELECT hash, key FROM jobs WHERE state='done' AND hash IN ({marks})", chunk):
                out[str(row["hash"])] = str(row["key"])
        return out

    def done_at(self, paths: Sequence[str]) -> list[sqlite3.Row]:
        """The done jobs whose recorded video is one of `paths`."""
        out: list[sqlite3.Row] = []
        for chunk, marks in _chunked(paths):
            q = f"SELECT id, hash, output_path, sha256 FROM jobs WHERE state='done' AND output_path IN ({marks})"
            out.extend(self.db.execute(q, chunk))
        return out

    def _write_final(self, run_id: int, job_id: int | None = None) -> None:
        """Record each job of the run (or only `job_id`) as it is now, its `final`: the fields `_FINAL_KEPT` that
        this state's schema has, each as the state holds it (times to the last digit)."""
        fields = _since(self.schema, _FINAL_KEPT)
        rows = self.db.execute(
            f"SELECT rj.job_id, {', '.join(f'j.{f}' for f in fields)} FROM run_jobs rj"
            " LEFT JOIN jobs j ON j.id = rj.job_id WHERE rj.run_id = ?" + ("" if job_id is None else " AND rj.job_id = ?"),
            (run_id,) if job_id is None else (run_id, job_id),
        ).fetchall()
        self.db.executemany(  # no job (its state is never null): no record, as before
            "UPDATE run_jobs SET final=? WHERE run_id=? AND job_id=?",
            [(None if row[1] is None else _json(dict(zip(fields, row[1:]))), run_id, row[0]) for row in rows],
        )

    def simulator_takes(self, hashes: Sequence[str]) -> dict[str, str]:
        """Of the stored jobs among `hashes`, those whose video (the attempt that made it) a simulator made, each
        with the endpoint it was made at (`m011_take_endpoint`). Takes of no record (made before it was kept, or
        by a provider that is no simulator) are not among them."""
        if self.schema < TAKES_MADE_AT:  # a state opened read-only, as an older gridrun left it: no record
            return {}
        if self.db.execute("SELECT 1 FROM attempts WHERE simulator = 1 LIMIT 1").fetchone() is None:
            return {}  # a provider's takes only (one scan, not a look per job)
        out: dict[str, str] = {}
        for chunk, marks in _chunked(hashes):
            for row in self.db.execute(
                f"SELECT j.hash, a.endpoint FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.n = {_VIDEO_ATTEMPT}"
                f" WHERE j.hash IN ({marks}) AND a.simulator = 1 AND a.endpoint IS NOT NULL", chunk,
            ):
                out[row[0]] = str(row[1])
        return out

    def sent_to(self, hashes: Sequence[str], states: Sequence[str], *, simulator: bool = False) -> dict[str, str]:
        """Of the stored jobs among `hashes` in one of `states`, the endpoint (base URL, "in process" for the
        simulator built in) their latest attempt's create was sent to, recorded as it was sent (`begin_submit`).
        Attempts of no record (sent before it was kept) are not among them. `simulator`: only those whose latest
        attempt a simulator answered (`attempts.simulator` = 1, the mark `transition` keeps): nothing was paid for
        them. An attempt whose mark is not recorded (NULL) is taken for a provider's, and is not among those."""
        if self.schema < TAKES_MADE_AT:  # a state opened read-only, as an older gridrun left it: no record
            return {}
        if simulator and self.db.execute("SELECT 1 FROM attempts WHERE simulator = 1 LIMIT 1").fetchone() is None:
            return {}  # a provider's attempts only (one scan, not a look per job)
        out: dict[str, str] = {}
        marks_states = ",".join("?" * len(states))
        for chunk, marks in _chunked(hashes):
            for row in self.db.execute(
                "SELECT j.hash, a.endpoint FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.n = j.attempts"
                f" WHERE j.hash IN ({marks}) AND j.state IN ({marks_states}) AND a.endpoint IS NOT NULL"
                + (" AND a.simulator = 1" if simulator else ""),
                [*chunk, *states],
            ):
                out[row[0]] = str(row[1])
        return out

    def sent_with(self, hashes: Sequence[str], states: Sequence[str]) -> dict[str, str]:
        """Of the stored jobs among `hashes` in one of `states`, the fingerprint of the API key their latest
        attempt's create was sent with (the key of the run that sent it, `m014_run_key_print`). Attempts a simulator
        answered (which keeps no accounts), and those of runs that recorded no fingerprint (the simulator built in,
        or a run before it was kept), are not among them."""
        if self.schema < KEY_PRINTS_SINCE:  # a state opened read-only, as an older gridrun left it: no record
            return {}
        if self.db.execute("SELECT 1 FROM runs WHERE key_print IS NOT NULL LIMIT 1").fetchone() is None:
            return {}  # no run recorded one (one scan, not a look per job)
        out: dict[str, str] = {}
        marks_states = ",".join("?" * len(states))
        for chunk, marks in _chunked(hashes):
            for row in self.db.execute(
                "SELECT j.hash, r.key_print FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.n = j.attempts"
                f" JOIN runs r ON r.id = a.run_id WHERE j.hash IN ({marks}) AND j.state IN ({marks_states})"
                " AND r.key_print IS NOT NULL AND COALESCE(a.simulator, 0) = 0",
                [*chunk, *states],
            ):
                out[row[0]] = str(row[1])
        return out

    def sent_by(self, hashes: Sequence[str], states: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Of the stored jobs among `hashes` in one of `states`, the provider that sent their latest attempt (the
        provider of the run that sent it, as the run recorded it) and that run's id: what a run collecting them (or
        a cancel) must be of, whatever the manifest names now."""
        out: dict[str, tuple[str, int]] = {}
        marks_states = ",".join("?" * len(states))
        for chunk, marks in _chunked(hashes):
            for row in self.db.execute(
                "SELECT j.hash, r.provider, r.id FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.n = j.attempts"
                f" JOIN runs r ON r.id = a.run_id WHERE j.hash IN ({marks}) AND j.state IN ({marks_states})",
                [*chunk, *states],
            ):
                out[row[0]] = (str(row[1]), int(row[2]))
        return out

    def leave_simulator_attempt(self, job_id: int, reason: str, *, run_id: int | None) -> set[int]:
        """A job in flight (or of unknown outcome) whose latest attempt a simulator at another endpoint answered
        (`sent_to`, `simulator`), which a run against the endpoint now sends anew: that attempt is left behind,
        cancelled with `reason` (nothing was paid: a simulator's render is a free placeholder), and the job planned,
        its next attempt a new one with a new key. Each ended run that left the job at that attempt records it as
        it is now, its estimate out of that run's reserve. Event `simulator-left` (for `run_id`) says so. Returns
        the runs whose record it changed."""
        changed: set[int] = set()
        with self._tx():
            row = self.db.execute("SELECT state, key, attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
            state = JobState(row["state"])
            if state not in (S.SUBMITTING, S.SUBMITTED, S.RUNNING, S.DOWNLOADING, S.UNKNOWN):
                raise StateError(f"job {row['key']}: cannot leave an attempt from {row['state']}")
            n = int(row["attempts"])
            a = self.db.execute("SELECT endpoint, simulator, estimate_micros FROM attempts WHERE job_id=? AND n=?",
                                (job_id, n)).fetchone()
            if a is None or a["simulator"] != 1:
                raise StateError(f"job {row['key']}: its attempt {n} was not answered by a simulator")
            now = self.clock()
            self.db.execute(
                "UPDATE attempts SET state=?, error=?, ended_at=?, billed_micros=NULL WHERE job_id=? AND n=?",
                (S.CANCELLED.value, reason, now, job_id, n),
            )
            self.db.execute(
                "UPDATE jobs SET state=?, error=?, provider_id=NULL, url=NULL, cost_micros=NULL, reset_from=NULL,"
                " updated_at=? WHERE id=?",
                (S.PLANNED.value, reason, now, job_id),
            )
            left = self._ended_holding(job_id, n, _RESERVING)
            changed |= self._released(job_id, left, int(a["estimate_micros"] or 0))
            self._event(run_id, job_id, "simulator-left", {"attempt": n, "endpoint": a["endpoint"], "was": state.value,
                                                            "reason": reason})
            self._known[job_id] = (S.PLANNED, row["key"])
        return changed

    def job_row(self, job_id: int) -> sqlite3.Row:
        row = self.db.execute(f"SELECT {self._cols('jobs')} FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise StateError(f"{self.path}: no job {job_id}")
        return row

    def output_paths(self, hashes: Sequence[str]) -> dict[str, str]:
        """Where the stored jobs among `hashes` save (or saved) their videos as recorded now: hash -> path."""
        out: dict[str, str] = {}
        for chunk, marks in _chunked(hashes):
            for job_hash, path in self.db.execute(f"SELECT hash, output_path FROM jobs WHERE hash IN ({marks})", chunk):
                out[job_hash] = str(path)
        return out

    def jobs_by_hash(self, hashes: Sequence[str]) -> dict[str, sqlite3.Row]:
        """Stored jobs among `hashes` (for the plan's diff against state)."""
        out: dict[str, sqlite3.Row] = {}
        for chunk, marks in _chunked(hashes):
            for row in self.db.execute(f"SELECT {self._cols('jobs')} FROM jobs WHERE hash IN ({marks})", chunk):
                out[row["hash"]] = row
        return out

    def transition(self, job_id: int, to: JobState, *, lazy: bool = False, made: tuple[str | None, bool] | None = None,
                   **fields: Any) -> None:
        """Move a job to state `to`, checking the transition; set `fields` on the job row. `made`: (the endpoint the
        run sends to, whether a simulator answered there), kept on the attempt that moves as where its take is made
        (`m011_take_endpoint`): an endpoint recorded before stays, and so does a simulator's mark.

        With `lazy`, the write joins an open deferred transaction committed by `flush()` (used for
        moves whose loss a restart recovers from, never for anything the pay-once rule depends on).
        """
        known = self._known.get(job_id)
        if known is None:
            row = self.db.execute("SELECT state, key FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise StateError(f"{self.path}: no job {job_id}")
            known = (JobState(row["state"]), row["key"])
        frm, key = known
        if to != frm and to not in _ALLOWED[frm]:
            raise StateError(f"job {key}: cannot move from {frm} to {to}")
        if self.schema < RENDER_SPAN_SINCE:
            fields = {k: v for k, v in fields.items() if k != "render_span"}
        state = to.value
        cols = {"state": state, "updated_at": self.clock(), **fields}
        if to == S.DONE or (to == S.DOWNLOADING and frm in (S.SUBMITTED, S.RUNNING)):
            # what went wrong on the way (a timeout, a failed download; once rendered, a render's) is over
            cols.setdefault("error", None)
        if to not in (S.PLANNED, S.SUBMITTING, S.UNKNOWN):
            cols["reset_from"] = None  # the re-run reached the provider: nothing to put back any more
        names = tuple(cols)
        sql = _JOB_UPDATES.get(names)
        if sql is None:  # a move of another shape: its statement made once (the connection caches it by its text)
            sql = _JOB_UPDATES[names] = f"UPDATE jobs SET {', '.join(f'{k}=?' for k in names)} WHERE id=?"
        args = [*cols.values(), job_id]
        if lazy and not self._batch_depth:  # `_deferred`, without a generator's cost: the run's commonest write
            if not self.db.in_transaction:
                self._relax()
                self._begin()
            self.db.execute(sql, args)
            self._sync_attempt(job_id, frm, to, fields, made)
            self._event(None, job_id, state, _event_detail(fields))
            self._pending += 1
        else:
            with self._deferred() if lazy else self._tx():
                self.db.execute(sql, args)
                self._sync_attempt(job_id, frm, to, fields, made)
                self._event(None, job_id, state, _event_detail(fields))
        self._known[job_id] = (to, key)

    def note(self, job_id: int, error: str | None) -> None:
        """Record why a job was left as it is (past its timeout, say) or what its polls meet, without moving it,
        for `status` (None: that is over); committed by the next `flush()`, like a lazy move."""
        with self._deferred():
            self.db.execute("UPDATE jobs SET error=?, updated_at=? WHERE id=?", (error, self.clock(), job_id))
            self._event(None, job_id, "note", {"error": error})

    def _sync_attempt(self, job_id: int, frm: JobState, to: JobState, fields: Mapping[str, Any],
                      made: tuple[str | None, bool] | None = None) -> None:
        if to == S.PLANNED:
            return
        upd: dict[str, Any] = {"state": to.value}
        if "provider_id" in fields:
            upd["provider_id"] = fields["provider_id"]
        if "error" in fields:
            upd["error"] = fields["error"]
        if to in FINAL:
            upd["ended_at"] = self.clock()
        if to == S.DONE:
            upd["billed_micros"] = fields.get("cost_micros")
        if to == S.DOWNLOADING and fields.get("cost_micros") is not None:  # rendered, so billed
            upd["billed_micros"] = fields["cost_micros"]
        # A failure or a cancelled render charged $0 was not billed; one charged was, and counts in spent as the
        # run's budget counted it.
        if to in (S.FAILED, S.EXPIRED, S.CANCELLED) and fields.get("cost_micros"):
            upd["billed_micros"] = fields["cost_micros"]
        billed = "billed_micros" in upd
        if billed:  # the first run to see it billed keeps it (a later re-download pays nothing)
            upd["billed_run_id"] = self.run_id
        where = made is not None and self.schema >= TAKES_MADE_AT
        if where:  # once a simulator's take, always one
            upd["endpoint"], upd["simulator"] = made[0] or None, int(made[1])
        # A cancelled attempt stays as it ended: after a re-render cancelled (`cancel_job`), the job is done by
        # an earlier attempt, which a later fetch of its video moves, not the cancelled one. So does a failed or
        # refused re-render (`rerender_failed`) when the job moves on from done (or from downloading, its video
        # fetched again); skipped only then: a job that failed or was rejected moves only to planned.
        its_video = frm in (S.DONE, S.DOWNLOADING)
        shape = (tuple(upd), its_video)
        sql = _ATTEMPT_UPDATES.get(shape)
        if sql is None:  # made once per shape, as `transition`'s
            sets = ", ".join(f"{k}=?" for k in upd if k not in _ATTEMPT_KEPT)
            if billed:
                sets += ", billed_run_id=COALESCE(billed_run_id, ?)"
            if where:
                sets += ", endpoint=COALESCE(endpoint, ?), simulator=MAX(COALESCE(simulator, 0), ?)"
            skip = _NOT_ITS_VIDEO_SQL if its_video else f"'{S.CANCELLED.value}'"
            sql = _ATTEMPT_UPDATES[shape] = (
                f"UPDATE attempts SET {sets} WHERE job_id=? AND n=(SELECT MAX(n) FROM attempts WHERE job_id=?"
                f" AND state NOT IN ({skip}))")
        self.db.execute(sql, [*upd.values(), job_id, job_id])

    def key_salt(self) -> str:
        """This state's part of the idempotency keys of the attempts it records (`m010_key_salt`)."""
        if self._salt is None:
            self._salt = str(self.db.execute("SELECT value FROM meta WHERE name='key_salt'").fetchone()[0])
        return self._salt

    def begin_submit(self, run_id: int, job_ids: Sequence[int], *,
                     made: tuple[str | None, bool] | None = None) -> dict[int, str]:
        """The write-ahead rule: commit a new attempt (state `submitting`, its idempotency key) for each job
        before any create request for it is sent. Returns job id -> idempotency key. `made`: where the attempts are
        sent (the endpoint, whether a simulator answered there so far), as `transition` takes it."""
        made = made if self.schema >= TAKES_MADE_AT else None
        endpoint, simulator = made if made is not None else (None, False)
        now = self.clock()
        keys: dict[int, str] = {}
        # One statement of each kind for the whole batch (it is every job that wants to be sent in the same
        # moment, dozens when a run starts or many renders end at once): rows as one statement per job made them.
        with self._tx():
            rows: dict[int, sqlite3.Row] = {}
            for chunk, marks in _chunked(job_ids):
                for row in self.db.execute(
                    f"SELECT id, state, key, hash, attempts, cost_estimate_micros FROM jobs WHERE id IN ({marks})", chunk
                ):
                    rows[row["id"]] = row
            attempts: list[tuple[Any, ...]] = []
            moves: dict[bool, list[tuple[Any, ...]]] = {False: [], True: []}  # from unknown -> the jobs' updates
            events: list[tuple[int, str]] = []
            used: list[tuple[str]] = []  # the voided keys sent again, out of the state's meta
            for job_id in job_ids:
                row = rows.get(job_id)
                if row is None:
                    raise StateError(f"{self.path}: no job {job_id}")
                frm = S.SUBMITTING if job_id in keys else JobState(row["state"])  # twice in one batch: sent already
                if frm not in (S.PLANNED, S.UNKNOWN):
                    raise StateError(f"job {row['key']}: cannot submit from {frm}")
                n = max(int(row["attempts"]), self._attempt_floors().get(job_id, 0)) + 1
                voided = self._voided().get(job_id)
                if voided is not None and voided[0] == n:
                    key = voided[1]
                    used.append((f"{VOIDED_KEY}{job_id}",))
                else:
                    key = idempotency_key(row["hash"], n, self.key_salt())
                attempts.append((job_id, n, run_id, key, S.SUBMITTING.value, row["cost_estimate_micros"], now,
                                 *((endpoint or None, int(simulator)) if made is not None else ())))
                moves[frm == S.UNKNOWN].append((S.SUBMITTING.value, n, now, now, job_id))
                events.append((n, key))
                keys[job_id] = key
            self.db.executemany(
                "INSERT INTO attempts (job_id, n, run_id, idempotency_key, state, estimate_micros, started_at"
                + (", endpoint, simulator) VALUES (?,?,?,?,?,?,?,?,?)" if made is not None
                   else ") VALUES (?,?,?,?,?,?,?)"),
                attempts,
            )
            for from_unknown, args in moves.items():
                # from unknown, the attempt before may have reached the provider: no reset to undo any more
                if args:
                    self.db.executemany(
                        "UPDATE jobs SET state=?, attempts=?, error=NULL, provider_id=NULL, url=NULL, cost_micros=NULL,"
                        " cost_reported_micros=NULL, updated_at=?, submitted_at=?, completed_at=NULL"
                        + (", render_span=NULL" if self.schema >= RENDER_SPAN_SINCE else "")
                        + (", reset_from=NULL" if from_unknown else "") + " WHERE id=?",
                        args,
                    )
            self.db.executemany(
                "INSERT INTO events (at, run_id, job_id, kind, detail) VALUES (?,?,?,?,?)",
                [(self.clock(), run_id, job_id, "submitting", _json({"attempt": n, "idempotency_key": key}))
                 for job_id, (n, key) in zip(keys, events)],
            )
            if used:
                self.db.executemany("DELETE FROM meta WHERE name=?", used)
        for job_id in keys:
            self._known[job_id] = (S.SUBMITTING, rows[job_id]["key"])
        return keys

    def _attempt_floors(self) -> dict[int, int]:
        """Job id -> the attempt above which its next is numbered (`ATTEMPT_FLOOR`, `skip_attempts`), read in once,
        with the voided keys (`_voided`)."""
        self._voided()
        if self._floors is None:
            self._floors = {}
        return self._floors

    def _voided(self) -> dict[int, tuple[int, str]]:
        """Job id -> (attempt, key) of the attempts voided (`void_attempt`) that are to be sent again with the key
        they were recorded with: this process's, and, read in once, those an earlier one voided and left unsent."""
        if not self._voided_read and self.schema >= KEYS_SALTED_AT:
            self._voided_read = True
            self._floors = {}
            # one read of both kinds of a job's meta row: the floors of attempts (`_attempt_floors`) too
            for name, value in self.db.execute(
                    "SELECT name, value FROM meta WHERE (name >= ? AND name < ?) OR (name >= ? AND name < ?)",
                    (VOIDED_KEY, VOIDED_KEY[:-1] + chr(ord(VOIDED_KEY[-1]) + 1),
                     ATTEMPT_FLOOR, ATTEMPT_FLOOR[:-1] + chr(ord(ATTEMPT_FLOOR[-1]) + 1))):
                with suppress(ValueError, TypeError):
                    if name.startswith(ATTEMPT_FLOOR):
                        self._floors[int(name[len(ATTEMPT_FLOOR):])] = int(value)
                        continue
                    n, key = json.loads(value)
                    self._voided_keys.setdefault(int(name[len(VOIDED_KEY):]), (int(n), str(key)))
        return self._voided_keys

    def void_attempt(self, job_id: int, reason: str) -> JobState:
        """A submission proven never to have reached the provider: drop the attempt, back to planned, with
        `reason` as the job's error until its next attempt.

        When the attempt is the one a `reset` (--force, retry) made way for, the reset is undone with it: the
        job is as it was before (done, say), so a later plain run does not pay for it. Returns its state now.
        """
        with self._tx():
            row = self.db.execute("SELECT state, key, hash, attempts, reset_from FROM jobs WHERE id=?",
                                  (job_id,)).fetchone()
            if JobState(row["state"]) not in (S.SUBMITTING, S.UNKNOWN):
                raise StateError(f"job {row['key']}: cannot void an attempt from {row['state']}")
            n = int(row["attempts"])
            key = self.db.execute("SELECT idempotency_key FROM attempts WHERE job_id=? AND n=?", (job_id, n)).fetchone()
            self.db.execute("DELETE FROM attempts WHERE job_id=? AND n=?", (job_id, n))
            if key is not None and key[0]:
                # Sent again (`begin_submit`) with the key it was recorded with, which an earlier gridrun made
                # without the state's salt: a send of it still on its way is then found, not paid a second time.
                # Kept in the state too, for the next process, should this one end before it sends the job.
                self._voided_keys[job_id] = (n, str(key[0]))
                if self.schema >= KEYS_SALTED_AT and key[0] != idempotency_key(row["hash"], n, self.key_salt()):
                    self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                                    (f"{VOIDED_KEY}{job_id}", _json([n, str(key[0])])))
            was = _was(row["reset_from"])
            if was is None:
                cols: dict[str, Any] = {"state": S.PLANNED.value, "error": reason}
            else:
                cols = {**was, "error": was["error"] or f"re-run not sent: {reason}"}
            state = self._put_back(job_id, cols, attempts=n - 1)
            self._event(None, job_id, "voided", {"attempt": n, "reason": reason,
                                                  **({"restored": state.value} if was is not None else {})})
            self._known[job_id] = (state, row["key"])
        return state

    def _put_back(self, job_id: int, cols: Mapping[str, Any], **more: Any) -> JobState:
        """Write `cols` (what `reset` kept, or plain planned) to the job, its reset settled; its state now."""
        cols = {**cols, **more, "reset_from": None, "updated_at": self.clock()}
        self.db.execute(f"UPDATE jobs SET {', '.join(f'{k}=?' for k in cols)} WHERE id=?", [*cols.values(), job_id])
        return JobState(cols["state"])

    def cancel_job(self, job_id: int, error: str, *, run_id: int | None, cost_micros: int | None = None,
                   cost_reported_micros: int | None = None) -> JobState:
        """A job cancelled at the provider (`gridrun cancel`, or seen so by a run): `cancelled`, `error` why, with
        what its render counts (`counted_cost`) and what the provider reported it cost. Returns its state now.

        When the cancelled attempt re-rendered a done job (--force, retry; `_done_before_rerun`), the job is put
        back as it was: its video, never replaced, is still at its output path with the SHA-256 and cost recorded
        for it, so a later plain run need not pay for it again. The attempt is kept, cancelled (it may be
        billed), and event `rerun-cancelled` (recorded for `run_id`, the run that saw it) says so.
        """
        with self.batch():
            self.transition(job_id, S.CANCELLED, error=error, cost_micros=cost_micros,
                            cost_reported_micros=cost_reported_micros)
            was = self._done_before_rerun(job_id)
            if was is None:
                return S.CANCELLED
            row = self.db.execute("SELECT key, attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
            state = self._put_back(job_id, was)
            self._event(run_id, job_id, "rerun-cancelled", {"attempt": int(row["attempts"]), "restored": state.value,
                                                            "error": error, "cost_micros": cost_micros})
            self._known[job_id] = (state, row["key"])
        return state

    def settle_left(self, job_id: int) -> set[int]:
        """A job in flight that `gridrun cancel` found ended (cancelled, failed, rendered) and recorded so, outside
        any run: the runs that ended leaving it in flight at that attempt record it as it is now.

        A run's record of its jobs and money (`final`, `final_money`) is kept from when it ended, and a later run
        that settles a job counts its charge as its own. `cancel` is no run: what the attempt was charged counts for
        the run that sent it (pinned to it, `billed_run_id`, so that a later run downloading the video does not count
        it again), and each ended run that left the job at this attempt has it as it is now, its estimate out of
        that run's reserve and, for the run that sent it, its charge in that run's spent: `status --runs` and each
        run's report then sum what the provider charged, as the export's `paid_in_run` says. Returns the runs whose
        record it changed."""
        changed: set[int] = set()
        with self._tx():
            a = self.db.execute(
                "SELECT a.n, a.run_id, a.billed_run_id, a.billed_micros, a.estimate_micros FROM attempts a"
                " JOIN jobs j ON j.id = a.job_id AND a.n = j.attempts WHERE j.id=?", (job_id,)).fetchone()
            if a is None:
                return changed
            payer = a["billed_run_id"] if a["billed_run_id"] is not None else a["run_id"]
            # of unknown outcome when its sender ended, found by a later run that left it in flight
            # (`book_to_sender`): the sender's reserve held it, not the later run's
            found = a["billed_run_id"] is not None and a["billed_run_id"] == a["run_id"]
            if a["billed_micros"] is not None and a["billed_run_id"] is None:
                self.db.execute("UPDATE attempts SET billed_run_id=? WHERE job_id=? AND n=?", (payer, job_id, a["n"]))
            # a job left `submitting` is among them: `cancel` found its create in the provider's request log
            flying = (S.SUBMITTING.value, S.SUBMITTED.value, S.RUNNING.value)
            for run_id, final, money in self.db.execute(
                "SELECT rj.run_id, rj.final, r.final_money FROM run_jobs rj JOIN runs r ON r.id = rj.run_id"
                " WHERE rj.job_id=? AND rj.final IS NOT NULL AND r.final_money IS NOT NULL", (job_id,)).fetchall():
                was, kept = json.loads(final), json.loads(money)
                sender = found and run_id == payer and was.get("state") == S.UNKNOWN.value
                if was.get("attempts") != a["n"] or was.get("state") not in flying and not sender:
                    continue  # left it otherwise: settled then, or at another attempt
                self._write_final(run_id, job_id)
                if found and run_id != payer:
                    changed.add(int(run_id))
                    continue  # its record as it is now; its money never counted it
                spent = int(kept.get("spent", 0)) + ((a["billed_micros"] or 0) if run_id == payer else 0)
                reserved = max(0, int(kept.get("reserved", 0)) - int(a["estimate_micros"]))
                self.db.execute("UPDATE runs SET final_money=? WHERE id=?",
                                (_json({"spent": spent, "reserved": reserved}), run_id))
                changed.add(int(run_id))
        return changed

    def book_to_sender(self, job_id: int) -> int | None:
        """A job of unknown outcome an earlier run sent, which this run found at the provider (its request log, or
        its video answering again) and follows: what its attempt is charged counts for the run that sent it, as
        its reserve did while it was unknown, not for the run that found it (whose budget never counted it, and
        which sent nothing for it). Pinned to the sender (`billed_run_id`) before it is billed; `money` leaves such
        an attempt out of a later run's reserve. Returns the attempt's number (None: no attempt)."""
        if self.schema < 2:
            return None
        with self._tx():
            row = self.db.execute("SELECT attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None or not row[0]:
                return None
            n = int(row[0])
            self.db.execute("UPDATE attempts SET billed_run_id=run_id WHERE job_id=? AND n=? AND billed_run_id IS NULL"
                            " AND billed_micros IS NULL", (job_id, n))
        return n

    def booked_to_sender(self, hashes: Sequence[str]) -> set[str]:
        """Of the jobs among `hashes`, those whose latest attempt is in flight and pinned to the earlier run that
        sent it (`book_to_sender`): a run that found it of unknown outcome left it in flight, and what it costs
        is still the sender's."""
        if self.schema < 2 or not hashes:
            return set()
        out: set[str] = set()
        for chunk, marks in _chunked(hashes):
            out.update(row[0] for row in self.db.execute(
                "SELECT j.hash FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.n = j.attempts"
                f" WHERE j.hash IN ({marks}) AND a.billed_run_id = a.run_id AND a.billed_micros IS NULL"
                f" AND a.state IN ({','.join('?' * len(_RESERVING))})", [*chunk, *_RESERVING]))
        return out

    def billed_before(self, hashes: Sequence[str]) -> set[str]:
        """Of the jobs among `hashes`, those an attempt of which the provider billed (above nothing): sending one
        again pays for it again, where one never billed (a failed render billed $0, a rejected create) is paid
        once."""
        if not hashes:
            return set()
        out: set[str] = set()
        for chunk, marks in _chunked(hashes):
            out.update(row[0] for row in self.db.execute(
                "SELECT DISTINCT j.hash FROM jobs j JOIN attempts a ON a.job_id = j.id"
                f" WHERE j.hash IN ({marks}) AND a.billed_micros > 0", chunk))
        return out

    def settle_found(self, job_id: int, n: int) -> set[int]:
        """A job of unknown outcome that a later run found and followed (`book_to_sender`, attempt `n`): once that
        attempt is settled (billed, failed, cancelled), the ended run that sent it and left it unknown records it
        as it is now, its estimate out of that run's reserve and its charge in that run's spent, so that `status
        --runs`, each run's report and the export (`paid_in_run`) sum the same. An attempt still in flight or
        unknown stays the sender's reserve, as it left it. Returns the runs whose record it changed."""
        changed: set[int] = set()
        if self.schema < 5:
            return changed
        with self._tx():
            a = self.db.execute("SELECT run_id, billed_run_id, billed_micros, estimate_micros, state FROM attempts"
                                " WHERE job_id=? AND n=?", (job_id, n)).fetchone()
            if a is None or a["run_id"] is None or a["billed_run_id"] != a["run_id"]:
                return changed
            if a["billed_micros"] is None and a["state"] in _RESERVING:
                return changed
            sender = int(a["run_id"])
            row = self.db.execute(
                "SELECT rj.final, r.final_money FROM run_jobs rj JOIN runs r ON r.id = rj.run_id"
                " WHERE rj.run_id=? AND rj.job_id=? AND rj.final IS NOT NULL AND r.final_money IS NOT NULL",
                (sender, job_id)).fetchone()
            if row is None:
                return changed
            was, kept = json.loads(row["final"]), json.loads(row["final_money"])
            if was.get("attempts") != n or was.get("state") != S.UNKNOWN.value:
                return changed  # that run left it otherwise: its record already counts it
            if self.db.execute("SELECT attempts FROM jobs WHERE id=?", (job_id,)).fetchone()[0] == n:
                self._write_final(sender, job_id)  # (a failure retry since is the finding run's own attempt)
            spent = int(kept.get("spent", 0)) + (a["billed_micros"] or 0)
            reserved = max(0, int(kept.get("reserved", 0)) - int(a["estimate_micros"] or 0))
            self.db.execute("UPDATE runs SET final_money=? WHERE id=?",
                            (_json({**kept, "spent": spent, "reserved": reserved}), sender))
            changed.add(sender)
        return changed

    def void_left(self, job_id: int, reason: str) -> set[int]:
        """A job a run left `submitting` that `gridrun cancel` proved never reached the provider (its request log,
        read to its end, has no create with the attempt's key): its attempt voided (`void_attempt`), and each ended
        run that left the job at that attempt records it as it is now, its estimate out of that run's reserve.
        Returns the runs whose record it changed."""
        changed: set[int] = set()
        with self.batch():
            a = self.db.execute(
                "SELECT a.n, a.estimate_micros FROM attempts a JOIN jobs j ON j.id = a.job_id AND a.n = j.attempts"
                " WHERE j.id=?", (job_id,)).fetchone()
            left = [] if a is None else self._ended_holding(job_id, a["n"], (S.SUBMITTING.value,))
            self.void_attempt(job_id, reason)
            if a is not None:
                changed |= self._released(job_id, left, int(a["estimate_micros"] or 0))
        return changed

    def _ended_holding(self, job_id: int, n: int, states: Sequence[str]) -> list[tuple[int, dict[str, Any]]]:
        """The ended runs that left the job at its attempt `n` in one of `states`, each with its recorded money
        (`runs.final_money`): those whose reserve holds the attempt's estimate."""
        left: list[tuple[int, dict[str, Any]]] = []
        for run_id, final, money in self.db.execute(
            "SELECT rj.run_id, rj.final, r.final_money FROM run_jobs rj JOIN runs r ON r.id = rj.run_id"
            " WHERE rj.job_id=? AND rj.final IS NOT NULL AND r.final_money IS NOT NULL", (job_id,)).fetchall():
            was = json.loads(final)
            if was.get("attempts") == n and was.get("state") in states:
                left.append((int(run_id), json.loads(money)))
        return left

    def _released(self, job_id: int, left: list[tuple[int, dict[str, Any]]], estimate_micros: int) -> set[int]:
        """Each run of `left` (`_ended_holding`) records the job as it is now, and `estimate_micros` out of its
        reserve. Returns those runs."""
        for run_id, kept in left:
            self._write_final(run_id, job_id)
            reserved = max(0, int(kept.get("reserved", 0)) - estimate_micros)
            self.db.execute("UPDATE runs SET final_money=? WHERE id=?", (_json({**kept, "reserved": reserved}), run_id))
        return {run_id for run_id, _ in left}

    def rerender_failed(self, job_id: int, to: JobState, *, run_id: int | None, **fields: Any) -> JobState:
        """A job whose render the provider failed, or whose create it refused (`to`, with `fields` as
        `transition` takes them). Returns its state now.

        When the attempt re-rendered a done job (--force; `_done_before_rerun`), for which the caller calls it only
        once it found the earlier video whole at its path (`rerendered`), the job is put back done as it was, as
        `cancel_job` does: its video, SHA-256 and cost, so that neither a plain run nor `retry` pays for it again. The attempt is kept as
        it ended (a failed render may be billed: it counts for the run that saw it), and event `rerun-failed`
        (recorded for `run_id`) says so, with its error.
        """
        with self.batch():
            self.transition(job_id, to, **fields)
            was = self._done_before_rerun(job_id)
            if was is None:
                return to
            return self._rerender_kept(job_id, was, run_id=run_id, ended=to, error=fields.get("error"),
                                       cost_micros=fields.get("cost_micros"))

    def retry_unsent(self, job_id: int, *, run_id: int | None) -> JobState:
        """A job failed by a re-render of a done job (--force) whose failure retry (run.failure_retries) never
        reached the provider: its reset undone (`undo_reset`) or its attempt voided (`void_attempt`), which left
        the job failed as that render ended. Put back done as it was, as `rerender_failed` puts back one whose
        failed re-render is not retried, so that no paid `retry` is needed: the failed attempt is kept (what it was
        charged counts for the run that saw it fail), and event `rerun-failed` (for `run_id`) says so with its
        error and charge. The caller calls it only once it found the earlier video whole at its path
        (`rerendered`). Returns the job's state now: failed still when it was no such re-render."""
        with self._tx():
            row = self.db.execute("SELECT state, attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
            was = self._done_before_rerun(job_id) if row["state"] == S.FAILED.value else None
            if was is None:
                return JobState(row["state"])
            take = self.db.execute("SELECT error, billed_micros FROM attempts WHERE job_id=? AND n=?",
                                   (job_id, int(row["attempts"]))).fetchone()
            return self._rerender_kept(job_id, was, run_id=run_id, ended=S.FAILED,
                                       error=None if take is None else take["error"],
                                       cost_micros=None if take is None else take["billed_micros"])

    def _rerender_kept(self, job_id: int, was: Mapping[str, Any], *, run_id: int | None, ended: JobState,
                       error: str | None, cost_micros: int | None) -> JobState:
        """Put a job whose re-render `ended` so back as it was done (`was`), with event `rerun-failed`; its state
        now. Inside the caller's transaction."""
        row = self.db.execute("SELECT key, attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
        state = self._put_back(job_id, was)
        self._event(run_id, job_id, "rerun-failed", {"attempt": int(row["attempts"]), "restored": state.value,
                                                     "ended": ended.value, "error": error,
                                                     "cost_micros": cost_micros})
        self._known[job_id] = (state, row["key"])
        return state

    def rerendered(self, job_id: int) -> tuple[str, str] | None:
        """The video the job's current attempt re-renders (--force, retry of a done job; `_done_before_rerun`):
        (its path, its SHA-256), or None when the attempt is no re-render of a done job."""
        was = self._done_before_rerun(job_id)
        return None if was is None else (str(was["output_path"]), str(was["sha256"]))

    def _done_before_rerun(self, job_id: int) -> dict[str, Any] | None:
        """What a job was before the re-run asked for (--force, retry) that its current attempt belongs to, when
        it was done (its `reset` event's record); None otherwise. The failure retries a run made on its own
        since belong to that re-run: none of them replaced the video."""
        for row in self.db.execute(
            f"SELECT detail FROM events WHERE job_id=? AND {_RESET_KINDS} AND kind='reset' ORDER BY id DESC",
            (job_id,),
        ):
            decided, was = _rerun_of(row["detail"])
            if decided:
                return None if was is None else {k: was.get(k) for k in _since(self.schema, _RESET_KEEPS)}
        return None

    def _earlier_takes(self, jobs: Sequence[JobRecord]) -> dict[int, EarlierTake]:
        """Of `jobs`, those re-rendered (--force, retry of a done job: planned again, in flight, or of unknown
        outcome: its create's answer lost, nothing arrived to move the earlier video aside) whose earlier
        video is still at its path (`_done_before_rerun`): the job's current take until the new one arrives, by
        job id. A file at that path is taken for the take, as a report takes a done job's (not hashed: a report
        rebuilt every few seconds reads this)."""
        ids = [j.id for j in jobs if JobState(j.state) in _REDOING]
        out: dict[int, EarlierTake] = {}
        seen: set[int] = set()
        read = self._resets_read  # an event never changes: each is decoded once
        for chunk, marks in _chunked(ids):
            for row in self.db.execute(
                f"SELECT id, job_id, detail FROM events WHERE job_id IN ({marks}) AND {_RESET_KINDS} AND kind='reset'"
                " ORDER BY id DESC", chunk,
            ):
                jid = int(row["job_id"])
                if jid in seen:
                    continue
                if (told := read.get(row["id"])) is None:
                    decided, was = _rerun_of(row["detail"])
                    take = None
                    if was is not None and isinstance(path := was.get("output_path"), str) and path:
                        cost, made = was.get("cost_micros"), was.get("done_run_id")
                        take = EarlierTake(path, str(was["sha256"]), cost if isinstance(cost, int) else None,
                                           made if isinstance(made, int) else None)
                    told = read[row["id"]] = (decided, take)
                decided, take = told
                if not decided:
                    continue
                seen.add(jid)
                if take is not None and os.path.isfile(take.output_path):
                    out[jid] = take
        return out

    def _with_earlier_takes(self, jobs: tuple[JobRecord, ...],
                            reuse: dict[int, tuple[tuple[Any, ...], JobRecord]] | None) -> tuple[JobRecord, ...]:
        """`jobs`, each re-rendered one whose earlier video is still at its path with that take (`earlier`); a
        record that changed replaces the one `reuse` keeps, so that a report rebuilt unchanged finds it again."""
        takes = self._earlier_takes(jobs)
        out: list[JobRecord] = []
        for job in jobs:
            take = takes.get(job.id)
            if take != job.earlier:
                job = dataclasses.replace(job, earlier=take)
                if reuse is not None and job.id in reuse:
                    reuse[job.id] = (reuse[job.id][0], job)
            out.append(job)
        return tuple(out)

    def pending_resets(self) -> list[int]:
        """Jobs left planned by a reset whose new attempt was never begun (a run killed in between)."""
        return [int(r[0]) for r in self.db.execute(
            "SELECT id FROM jobs WHERE state=? AND reset_from IS NOT NULL", (S.PLANNED.value,))]

    def undo_reset(self, job_id: int) -> JobState | None:
        """A job left planned by a reset whose new attempt was never begun (the run was killed in between):
        put it back as it was. Returns its state now, or None when there was no such reset."""
        with self._tx():
            row = self.db.execute("SELECT state, key, reset_from FROM jobs WHERE id=?", (job_id,)).fetchone()
            was = _was(row["reset_from"])
            if was is None or JobState(row["state"]) != S.PLANNED:
                return None
            state = self._put_back(job_id, was)
            self._event(None, job_id, "reset-undone", {"restored": state.value})
            self._known[job_id] = (state, row["key"])
        return state

    def abandon_attempt(self, job_id: int, reason: str) -> None:
        """An `unknown` attempt whose video the provider has lost: settle the attempt as failed (it no longer
        counts against the budget) and make the job plannable, so that its next submit is a new attempt
        with a new idempotency key (the old key would only name the lost video again)."""
        with self._tx():
            row = self.db.execute("SELECT state, key, attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
            if JobState(row["state"]) != S.UNKNOWN:
                raise StateError(f"job {row['key']}: cannot abandon an attempt from {row['state']}")
            now = self.clock()
            self.db.execute(
                "UPDATE attempts SET state=?, error=?, ended_at=? WHERE job_id=? AND n=?",
                (S.FAILED.value, reason, now, job_id, int(row["attempts"])),
            )
            self.db.execute(
                "UPDATE jobs SET state=?, error=?, provider_id=NULL, url=NULL, reset_from=NULL, updated_at=? WHERE id=?",
                (S.PLANNED.value, reason, now, job_id),
            )
            self._event(None, job_id, "abandoned", {"attempt": int(row["attempts"]), "reason": reason})
            self._known[job_id] = (S.PLANNED, row["key"])

    def following(self, job_id: int) -> Following:
        """What following a job in flight needs of its row: its video, when its attempt was sent, that
        attempt's number, idempotency key (None before any), end and beginning, what its render counted, and
        when that render was seen completed."""
        row = self.db.execute(
            "SELECT jobs.provider_id, jobs.submitted_at, jobs.attempts, a.idempotency_key, a.ended_at, a.started_at,"
            " jobs.cost_micros, jobs.completed_at FROM jobs"
            " LEFT JOIN attempts a ON a.rowid = (SELECT rowid FROM attempts WHERE job_id=jobs.id ORDER BY n DESC LIMIT 1)"
            " WHERE jobs.id=?",
            (job_id,),
        ).fetchone()
        if row is None:
            raise StateError(f"{self.path}: no job {job_id}")
        return Following(row[0], row[1], int(row[2]), None if row[3] is None else str(row[3]), row[4], row[5], row[6],
                         row[7])

    def reset(self, job_id: int, reason: str) -> None:
        """Make a settled job plannable again (retry, --force). The next submit is a new paid attempt; what
        the job was is kept (`reset_from`), for `void_attempt` or `undo_reset` to put back should that submit
        never reach the provider."""
        with self.batch():
            row = self.db.execute(f"SELECT {', '.join(_since(self.schema, _RESET_KEEPS))} FROM jobs WHERE id=?",
                                  (job_id,)).fetchone()
            self.transition(job_id, S.PLANNED, error=None, sha256=None, downloaded_at=None, done_run_id=None,
                            reset_from=_json(dict(row)))
            self._event(None, job_id, "reset", {"reason": reason, "was": dict(row)})

    def plan_again(self, job_id: int, reason: str) -> None:
        """A job whose render the provider failed for the account (its balance spent), nothing made: planned again,
        `reason` its error, so that a plain run sends it (a new attempt, under a new key) once the account is
        topped up, as it sends the jobs the refusal kept from being sent. The failed attempt is kept as it ended
        (what it was charged counts for the run that saw it). Unlike `reset`, nothing is kept to put back: the
        next run does not undo it."""
        with self.batch():
            self.transition(job_id, S.PLANNED, error=reason, sha256=None, downloaded_at=None, done_run_id=None,
                            reset_from=None)
            # marked as the account's: the job's failure retries are counted on across it (`failure_retries_made`)
            self._event(None, job_id, "reset", {"reason": reason, "account": True})

    def failure_retries_made(self, job_ids: Sequence[int]) -> dict[int, int]:
        """Per job, the new attempts runs made on their own after failed renders (resets whose reason begins
        with FAILURE_RETRY) since it was last sent again on request (retry, --force): a run killed and resumed
        does not begin its job's count again. A reset put back before its attempt reached the provider
        (undone, or its attempt voided) made nothing: the count is as it was before it."""
        made: dict[int, int] = {}
        before: dict[int, int] = {}
        for chunk, marks in _chunked(list(dict.fromkeys(job_ids))):
            for row in self.db.execute(
                f"SELECT job_id, kind, detail FROM events WHERE job_id IN ({marks}) AND {_RESET_KINDS} ORDER BY id",
                chunk,
            ):
                jid = row["job_id"]
                detail = json.loads(row["detail"]) if row["detail"] else {}
                detail = detail if isinstance(detail, dict) else {}
                if row["kind"] == "reset" and detail.get("account"):
                    continue  # planned again after the account refused it: owed a send, not a new count (`plan_again`)
                if row["kind"] == "reset":
                    before[jid] = made.get(jid, 0)
                    made[jid] = made.get(jid, 0) + 1 if str(detail.get("reason", "")).startswith(FAILURE_RETRY) else 0
                elif (row["kind"] == "reset-undone" or "restored" in detail) and jid in before:
                    made[jid] = before.pop(jid)
        return {jid: n for jid, n in made.items() if n}

    def last_reset_reason(self, job_id: int) -> str | None:
        """Why the job was last reset (retry, --force, a failure retry), or None when it never was."""
        row = self.db.execute(
            f"SELECT detail FROM events WHERE job_id=? AND {_RESET_KINDS} AND kind='reset' ORDER BY id DESC LIMIT 1",
            (job_id,),
        ).fetchone()
        if row is None or not row["detail"]:
            return None
        detail = json.loads(row["detail"])
        return str(detail.get("reason", "")) if isinstance(detail, dict) else None

    def earlier_take(self, job_id: int) -> tuple[str, str] | None:
        """The video a re-run of a done job (--force, retry) is to replace: (its path, its SHA-256) as the
        job's last reset from done recorded them, or None when it never was done before a reset."""
        for row in self.db.execute(
            f"SELECT detail FROM events WHERE job_id=? AND {_RESET_KINDS} AND kind='reset' ORDER BY id DESC",
            (job_id,),
        ):
            detail = json.loads(row["detail"]) if row["detail"] else {}
            was = detail.get("was") if isinstance(detail, dict) else None
            if isinstance(was, dict) and was.get("state") == S.DONE.value and was.get("sha256"):
                path = was.get("output_path")
                if not isinstance(path, str) or not path:
                    # A reset recorded by a gridrun before the path was kept with it (schemas 1-3): a reset leaves
                    # the job's path as it was, so the job's own is the take's.
                    path = self.db.execute("SELECT output_path FROM jobs WHERE id=?", (job_id,)).fetchone()[0]
                return str(path), str(was["sha256"])
        return None

    def renders(self, job_hash: str) -> frozenset[str]:
        """The provider ids of the renders this state recorded for the job whose hash is `job_hash` (each attempt's,
        and the job's own), none when it has no such job: what tells a take of its own, found at an output path as
        its sidecar records it, from another state's render of the same job, which a download must not replace
        without a copy."""
        return frozenset(str(row[0]) for row in self.db.execute(
            "SELECT a.provider_id FROM attempts a JOIN jobs ON jobs.id = a.job_id"
            " WHERE jobs.hash=? AND a.provider_id IS NOT NULL"
            " UNION SELECT provider_id FROM jobs WHERE hash=? AND provider_id IS NOT NULL",
            (job_hash, job_hash),
        ))

    def recorded_take(self, job_id: int, provider_id: str, sha256: str) -> dict[str, Any] | None:
        """The done take of the job that a run of this state recorded with this render (`provider_id`) and this
        video (`sha256`), as the runs that had it left it (`final`): its video's fields (`_TAKE_FIELDS`) and
        `done_run_id`, the run its attempt is billed to; None when no run recorded it."""
        for (text,) in self.db.execute(
            "SELECT final FROM run_jobs WHERE job_id=? AND final IS NOT NULL ORDER BY run_id", (job_id,)
        ):
            final = json.loads(text)
            if (isinstance(final, dict) and final.get("state") == S.DONE.value
                    and final.get("provider_id") == provider_id and final.get("sha256") == sha256):
                made = self._billed_by_render(job_id, provider_id)
                return {**{f: final.get(f) for f in _TAKE_FIELDS}, "done_run_id": made[0] if made else None}
        return None

    def take_of(self, job_id: int, provider_id: str) -> tuple[int, str] | None:
        """The number and idempotency key of the job's latest attempt that made render `provider_id`: the take a
        done job's video came from, which a failed or cancelled re-render since is not; None when no attempt
        recorded that render."""
        row = self.db.execute("SELECT n, idempotency_key FROM attempts WHERE job_id=? AND provider_id=?"
                              " ORDER BY n DESC", (job_id, provider_id)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def _billed_by_render(self, job_id: int, provider_id: str) -> Any:
        """The row (the run its attempt is billed to, the run that sent it) of the job's latest attempt that made
        render `provider_id`; None when no attempt did."""
        return self.db.execute(f"SELECT {self._billed_by}, run_id FROM attempts WHERE job_id=? AND provider_id=?"
                               " ORDER BY n DESC", (job_id, provider_id)).fetchone()

    def take_back(self, run_id: int, job_id: int, take: Mapping[str, Any], path: str | Path) -> None:
        """The done job's video is `take` (`recorded_take`), an earlier take of its own at `path`, which a run of
        a manifest that has it there caches as it is: a later take (another manifest's re-render of the same
        request, in its own folder) stays where it is, and is found the same way by that manifest's runs."""
        with self._tx():
            cols = {**{f: take[f] for f in _since(self.schema, (*_TAKE_FIELDS, "done_run_id"))}, "output_path": str(path),
                    "updated_at": self.clock()}
            self.db.execute(f"UPDATE jobs SET {', '.join(f'{k}=?' for k in cols)} WHERE id=?", (*cols.values(), job_id))
            self._event(run_id, job_id, "take-cached", {"path": str(path), "sha256": take["sha256"],
                                                         "provider_id": take["provider_id"]})

    def record_recovered(self, run_id: int, takes: Sequence[Mapping[str, Any]]) -> None:
        """Record each job of `takes` done with the take its video's sidecar names (`runner.recover`), in one
        transaction, with an event `recovered` each: the job (`job_id`) done with its `provider_id`, `sha256`,
        `cost_micros`, `cost_reported_micros` and times, its video at `output_path`; its attempt `n` with its
        `idempotency_key` (a name of the record's own where the sidecar has none, or another attempt has it:
        never sent) and estimate. The attempt belongs to no run of this state (the run that sent it is not
        recorded here): its cost counts in no run's spending, and the job's video is the recover run's
        (`done_run_id`) for later runs to cache. `endpoint` (with `simulator`): where a simulator made the take."""
        now = self.clock()
        with self._tx():
            for take in takes:
                jid, n = int(take["job_id"]), int(take["n"])
                key = take.get("idempotency_key")
                if not isinstance(key, str) or self.db.execute(
                        "SELECT 1 FROM attempts WHERE idempotency_key=?", (key,)).fetchone() is not None:
                    key = f"recovered-{take['hash'][:24]}-{n}"
                cols: dict[str, Any] = {
                    "job_id": jid, "n": n, "run_id": None, "idempotency_key": key, "state": S.DONE.value,
                    "provider_id": take["provider_id"], "estimate_micros": take["estimate_micros"],
                    "billed_micros": take["cost_micros"], "started_at": take.get("submitted_at") or now,
                    "ended_at": take.get("downloaded_at") or now}
                if self.schema >= TAKES_MADE_AT and take.get("endpoint") is not None:
                    cols.update(endpoint=take["endpoint"], simulator=int(bool(take.get("simulator"))))
                self.db.execute(f"INSERT INTO attempts ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                tuple(cols.values()))
                upd: dict[str, Any] = {
                    "state": S.DONE.value, "error": None, "cost_micros": take["cost_micros"], "attempts": n,
                    "provider_id": take["provider_id"], "sha256": take["sha256"],
                    **{t: take.get(t) for t in ("submitted_at", "completed_at", "downloaded_at")},
                    "done_run_id": run_id, "output_path": str(take["output_path"]), "updated_at": now}
                if self.schema >= REPORTED_COST_SINCE:
                    upd["cost_reported_micros"] = take.get("cost_reported_micros")
                self.db.execute(f"UPDATE jobs SET {', '.join(f'{k}=?' for k in upd)} WHERE id=?",
                                (*upd.values(), jid))
                self._event(run_id, jid, "recovered", {
                    "path": str(take["output_path"]), "sha256": take["sha256"], "provider_id": take["provider_id"],
                    "attempt": n, "idempotency_key": take.get("idempotency_key"), "cost_micros": take["cost_micros"],
                    "run_id": take.get("run_id")})

    def records_runs(self) -> bool:
        """The state records a run (none: a state lost, or begun anew)."""
        return self.db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None

    def records_run(self, run_id: int, outputs_dir: Path) -> bool:
        """The state records run `run_id` as the one the lock of the output folder `outputs_dir` names: a run of that
        number, and not a `gridrun recover` of another output folder (one serving several manifests, recovered one
        after the other after a loss: the number of another folder's lost run may be a recover's since)."""
        row = self.db.execute("SELECT status, outputs_dir FROM runs WHERE id=?", (run_id,)).fetchone()
        return row is not None and (row[0] != RECOVERED_RUN or _same_folder(str(row[1]), outputs_dir.resolve()))

    def unsent_keys(self) -> list[tuple[str, str]]:
        """The job hash and idempotency key of each attempt the state records that no run of its own sent: the
        takes a `gridrun recover` recorded from their sidecars, sent by the runs of a state lost."""
        return [(str(r[0]), str(r[1])) for r in self.db.execute(
            "SELECT jobs.hash, a.idempotency_key FROM attempts a JOIN jobs ON jobs.id = a.job_id"
            " WHERE a.run_id IS NULL")]

    def adopt_salt(self, salt: str) -> bool:
        """Make `salt` the state's `key_salt`, that of a state lost whose takes a `gridrun recover` records here,
        where the state has sent nothing under its own yet (no attempt of a run of its own): a job the lost state
        had in flight is sent again under the key the provider knows it by, and a later recover (of another
        manifest sharing the state, of a video put back) takes the lost state's renders for this state's. In the
        transaction open (`batch`). Returns whether it did."""
        if self.schema < KEYS_SALTED_AT or self.db.execute(
                "SELECT 1 FROM attempts WHERE run_id IS NOT NULL LIMIT 1").fetchone() is not None:
            return False
        with self._tx():
            self.db.execute("UPDATE meta SET value=? WHERE name='key_salt'", (salt,))
        self._salt = None  # read again: the transaction may yet be rolled back
        return True

    def skip_attempts(self, run_id: int, seen: Mapping[int, int]) -> None:
        """Number the next attempt of each job of `seen` (job id -> the highest attempt of it found sent under the
        key part `adopt_salt` carried over) above that one: a job planned, whose attempts the state lost, would
        otherwise be sent again under a key the provider already answered (its older render, its failure given
        back); so would a job recorded done with an earlier take than one found (a later take edited, or kept
        elsewhere), by `run --force`: its floor is kept apart (`ATTEMPT_FLOOR`), its `attempts` left its take's,
        which the state reads its current attempt by. Event `attempts-skipped` each. In the transaction open
        (`batch`)."""
        with self._tx():
            for job_id, n in seen.items():
                done = self.db.execute("UPDATE jobs SET attempts=? WHERE id=? AND state=? AND attempts < ?",
                                       (int(n), int(job_id), S.PLANNED.value, int(n))).rowcount
                if not done and self.db.execute("SELECT 1 FROM jobs WHERE id=? AND state!=? AND attempts < ?", (
                        int(job_id), S.PLANNED.value, int(n))).fetchone() is not None \
                        and self._attempt_floors().get(int(job_id), 0) < int(n):
                    self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                                    (f"{ATTEMPT_FLOOR}{int(job_id)}", str(int(n))))
                    self._attempt_floors()[int(job_id)] = int(n)
                    done = 1
                if done:
                    self._event(run_id, int(job_id), "attempts-skipped", {"attempt": int(n)})

    def mark_cached(self, run_id: int, job_id: int, from_run: int | None) -> None:
        with self._tx():
            self.db.execute(
                "UPDATE run_jobs SET cached_from_run=? WHERE run_id=? AND job_id=?", (from_run, run_id, job_id)
            )

    def last_event(self, job_id: int, kind: str, *, before_run: int | None) -> dict[str, Any] | None:
        """The detail of the job's latest event `kind` recorded by a run before `before_run` (any run when None);
        None when there is none."""
        row = self.db.execute(
            "SELECT detail FROM events WHERE job_id = ? AND kind = ? AND run_id < ? ORDER BY id DESC LIMIT 1",
            (job_id, kind, before_run if before_run is not None else 1 << 62)).fetchone()
        if row is None:
            return None
        try:
            detail = json.loads(row[0]) if row[0] else {}
        except ValueError:
            return None
        return detail if isinstance(detail, dict) else None

    def event(self, run_id: int | None, job_id: int | None, kind: str, detail: Mapping[str, Any] | None = None) -> None:
        """Append an event (committed with the next write when a deferred transaction is open)."""
        if self.db.in_transaction:
            self._event(run_id, job_id, kind, detail)
            self._pending += 1
            return
        with self._tx():
            self._event(run_id, job_id, kind, detail)

    def _event(self, run_id: int | None, job_id: int | None, kind: str, detail: Mapping[str, Any] | None) -> None:
        self.db.execute(
            "INSERT INTO events (at, run_id, job_id, kind, detail) VALUES (?,?,?,?,?)",
            (self.clock(), run_id, job_id, kind, _json(detail) if detail else None),
        )

    # -- reading ------------------------------------------------------------------------------------
    def run_job_rows(self, run_id: int, *, where: str = "") -> list[sqlite3.Row]:
        """The run's jobs in plan order, each with its key in the run, the run it was cached from,
        `billed_run`: the run that saw the job's current attempt (for a done job, the one that made its video)
        billed, else the one that sent it, and `sent_run`: the one that sent it. `where`: a further condition
        on the job's row (`j`), SQL of constants only."""
        billed_by = "COALESCE(a.billed_run_id, a.run_id)" if self.schema >= 2 else "a.run_id"
        # where the attempt was sent, whether a simulator answered there, and the provider of the run that sent it
        made = (", a.endpoint AS made_at, a.simulator AS made_by_simulator,"
                " (SELECT r.provider FROM runs r WHERE r.id = a.run_id) AS sent_by"
                if self.schema >= TAKES_MADE_AT else "")
        return self.db.execute(  # the attempt found once, by its id
            f"SELECT {self._cols('jobs', 'j.')}, rj.key AS run_key, rj.cached_from_run, {billed_by} AS billed_run, a.run_id AS sent_run{made}"
            " FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id LEFT JOIN attempts a ON a.id ="
            f" (SELECT x.id FROM attempts x WHERE x.job_id = j.id AND x.n = {_VIDEO_ATTEMPT})"
            f" WHERE rj.run_id=?{f' AND ({where})' if where else ''} ORDER BY rj.position",
            (run_id,),
        ).fetchall()

    def lowered_billed(self, lowered: Mapping[str, int]) -> tuple[str, int, int | None] | None:
        """The first job of `lowered` (job hash -> gridrun's own price of a job a capabilities file of the manifest
        prices lower, `Plan.lowered`) recorded billed above the upper factor of COST_FACTORS of the estimate it was
        sent with and counted as billed (a run's poll, `gridrun cancel` or `gridrun recover` counting the bill
        against gridrun's price, or a job estimated at $0, whose bill counts as it is): its key, the bill, and the
        run that recorded it; None where none is."""
        if not lowered:
            return None
        rows = self.db.execute(
            "SELECT hash, key, cost_reported_micros, COALESCE(done_run_id, (SELECT a.run_id FROM attempts a"
            " WHERE a.job_id = jobs.id ORDER BY a.n DESC LIMIT 1)) AS run FROM jobs"
            " WHERE cost_reported_micros IS NOT NULL AND cost_micros = cost_reported_micros"
            f" AND state NOT IN ('failed', 'cancelled') AND cost_reported_micros > {COST_FACTORS[1]:g} *"
            " cost_estimate_micros ORDER BY id")
        found = next((r for r in rows if r["hash"] in lowered), None)
        return None if found is None else (found["key"], found["cost_reported_micros"], found["run"])

    def raise_estimates(self, lowered: Mapping[str, int], *, billed: bool = False) -> None:
        """The jobs of `lowered` not sent (planned), once one of them was billed at gridrun's own price
        (`lowered_billed`; `billed`: the caller saw it, before it is recorded), estimated at that price where their
        estimate is lower: what a run counts them at from then on (`Plan.lowered`), and what the next step and
        `status` say sending them costs."""
        if not lowered or not billed and self.lowered_billed(lowered) is None:
            return
        with self._tx():
            for chunk, marks in _chunked(list(lowered)):
                rows = list(self.db.execute(f"SELECT id, hash, cost_estimate_micros FROM jobs WHERE state = 'planned'"
                                            f" AND hash IN ({marks})", chunk))
                self.db.executemany("UPDATE jobs SET cost_estimate_micros=? WHERE id=?",
                                    [(lowered[r["hash"]], r["id"]) for r in rows
                                     if r["cost_estimate_micros"] < lowered[r["hash"]]])

    def billed_above(self, run: RunRecord) -> BilledAbove | None:
        """The jobs `run` paid that the provider billed above the upper factor of COST_FACTORS of their
        estimates, as `Snapshot.billed_above` finds them (None: none), read from those jobs' rows alone: what
        `plan` and a run's pre-send lines scale the jobs sent next by."""
        if self.schema < REPORTED_COST_SINCE:  # an older gridrun's state, read as it is: no reported costs kept
            return None
        rows = self.run_job_rows(run.id, where=f"j.cost_reported_micros > {COST_FACTORS[1]:g} * j.cost_estimate_micros"
                                                " AND j.cost_estimate_micros > 0")
        jobs = [job_record(r) for r in rows]
        above = [(j.cost_estimate_micros, j.cost_reported_micros) for j in jobs
                 if j.billed_above and j.paid_run == run.id and j.cost_reported_micros is not None]
        return BilledAbove.of(run.id, above, self._prices_from(run) if above else "")

    def billing(self, manifest_name: str, estimates: Mapping[str, int] | None = None, *,
                endpoint: str = "") -> Billing | None:
        """What the completed renders of the jobs of the latest run of `manifest_name` were billed against their
        estimates, whichever run paid them (`records.billing_of`: the highest ratio, of a figure reported and
        counted as billed); None when none was, or no run is. `estimates`: job hash -> its estimate now (the
        plan's, at the price table as it is now): only the jobs the plan has count, each weighed against it
        instead of the estimate it was sent with, so that a price table corrected since counts as corrected, and
        a job of another price row (a model, quality or provider since changed) says nothing of the plan's.
        `endpoint`: the plan's (`Plan.endpoint`; empty: not known): a render made at another endpoint, or a
        simulator's made anywhere else (its figures made up), is no bill of the provider the plan sends to.
        One query, of that run's jobs with a reported figure, and one of where their renders were made."""
        if self.schema < REPORTED_COST_SINCE:  # an older gridrun's state, read as it is: no reported costs kept
            return None
        last = self.latest_run(manifest_name)
        if last is None:
            return None
        rows = self.run_job_rows(last.id, where="j.cost_reported_micros IS NOT NULL AND j.cost_estimate_micros > 0"
                                                " AND j.state NOT IN ('failed', 'cancelled')")
        if estimates is not None:
            rows = [r for r in rows if r["hash"] in estimates]
        if endpoint and rows and self.schema >= TAKES_MADE_AT:
            from .plan import same_endpoint

            made: dict[int, tuple[str | None, bool]] = {}
            for chunk, marks in _chunked([r["id"] for r in rows]):
                for got in self.db.execute(
                    f"SELECT j.id, a.endpoint, a.simulator FROM jobs j JOIN attempts a ON a.job_id = j.id"
                    f" AND a.n = {_VIDEO_ATTEMPT} WHERE j.id IN ({marks})", chunk,
                ):
                    made[got[0]] = (got[1], bool(got[2]))

            def here(job_id: int) -> bool:
                at, simulator = made.get(job_id, (None, False))
                if at is None:  # made before where it was made was kept: a provider's, as it was counted then
                    return not simulator
                return same_endpoint(str(at), endpoint)

            rows = [r for r in rows if here(r["id"])]
        return billing_of(map(job_record, rows), estimates, run_id=last.id)

    def in_flight_elsewhere(self, manifest_name: str, states: Sequence[str]) -> list[tuple[str, int]]:
        """The manifests other than `manifest_name` with jobs in one of `states` in runs of theirs, each with how many:
        (name, jobs), the most first."""
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            "SELECT r.manifest_name, COUNT(DISTINCT j.id) FROM run_jobs rj JOIN runs r ON r.id = rj.run_id"
            f" JOIN jobs j ON j.id = rj.job_id WHERE r.manifest_name != ? AND j.state IN ({marks})"
            " GROUP BY r.manifest_name ORDER BY COUNT(DISTINCT j.id) DESC, r.manifest_name",
            (manifest_name, *states),
        ).fetchall()
        return [(str(name), int(n)) for name, n in rows]

    def in_flight_rows(self, manifest_name: str, states: Sequence[str]) -> list[sqlite3.Row]:
        """The jobs in one of `states` of every run of `manifest_name`, each once, with `held_by`: the latest of
        those runs that has it. Newest run first, each run's in plan order. An earlier run's job is among them
        when the manifest no longer has it and a later run left it in flight (--leave-in-flight)."""
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            f"SELECT rj.run_id AS held_by, {self._cols('jobs', 'j.')} FROM run_jobs rj JOIN runs r ON r.id = rj.run_id"
            f" JOIN jobs j ON j.id = rj.job_id WHERE r.manifest_name=? AND j.state IN ({marks})"
            " ORDER BY rj.run_id DESC, rj.position",
            (manifest_name, *states),
        ).fetchall()
        latest: dict[int, sqlite3.Row] = {}
        for r in rows:
            latest.setdefault(r["id"], r)
        return list(latest.values())

    @property
    def _billed_by(self) -> str:
        """The run an attempt's charge counts for, as SQL over `attempts`: the one that saw it billed (schema 2),
        else the one that sent it."""
        return "COALESCE(billed_run_id, run_id)" if self.schema >= 2 else "run_id"

    @property
    def _simulated(self) -> str:
        """An attempt a simulator answered, as SQL over `attempts`: one that recorded it (schema 11), or one made
        before attempts kept it by a run of `provider: sim`, which reaches only a simulator (built in or served);
        an attempt of any other provider made then counts as paid."""
        run = "COALESCE(attempts.run_id, attempts.billed_run_id)" if self.schema >= 2 else "attempts.run_id"
        by_sim = f"(SELECT provider FROM runs WHERE runs.id = {run}) = 'sim'"
        if self.schema < TAKES_MADE_AT:  # a state opened read-only, as an older gridrun left it
            return f"({by_sim})"
        return f"(simulator = 1 OR (simulator IS NULL AND {by_sim}))"

    def billed_runs(self, attempts: Mapping[int, int]) -> dict[int, int | None]:
        """For each job id, the run its attempt number `attempts[job_id]` is billed to (see `run_job_rows`)."""
        return {job_id: runs[0] for job_id, runs in self._attempt_runs(attempts).items()}

    def _attempt_runs(self, attempts: Mapping[int, int], done: Mapping[int, str] | None = None,
                      ) -> dict[int, tuple[int | None, int | None]]:
        """For each job id, the runs its attempt number `attempts[job_id]` is billed to and was sent by; for a job
        in `done` (job id -> the render its video is of), those of the attempt up to that number that made the
        video, as `_VIDEO_ATTEMPT` finds it: a re-render cancelled or failed after it is not."""
        out: dict[int, tuple[int | None, int | None]] = {}
        for job_id, n in attempts.items():
            row = None
            if done is not None and job_id in done:
                row = self.db.execute(
                    f"SELECT {self._billed_by}, run_id FROM attempts WHERE job_id=? AND n<=?"
                    f" AND state NOT IN ({_NOT_ITS_VIDEO_SQL}) ORDER BY provider_id IS NOT ?, n DESC LIMIT 1",
                    (job_id, n, done[job_id]),
                ).fetchone()
            if row is None:
                row = self.db.execute(
                    f"SELECT {self._billed_by}, run_id FROM attempts WHERE job_id=? AND n=?", (job_id, n)
                ).fetchone()
            out[job_id] = (None, None) if row is None else (row[0], row[1])
        return out

    def money(self, run_id: int | None = None, *, manifest_name: str | None = None) -> tuple[int, int]:
        """(spent, reserved) in micro-USD: billed attempts, and attempts in flight or of unknown outcome; of
        one run (what it sent, and what it follows that an earlier run sent), of every run of a manifest, or of
        everything in the store."""
        where = billed = ""
        args: tuple[Any, ...] = ()
        billed_args: tuple[Any, ...] = ()
        if run_id is not None:
            # a run's: what it sent, and what it followed (jobs of its plan) that an earlier run had sent
            where = (" AND (run_id=? OR run_id<? AND job_id IN (SELECT job_id FROM run_jobs WHERE run_id=?))")
            args = (run_id, run_id, run_id)
            billed, billed_args = f" AND {self._billed_by}=?", (run_id,)
        elif manifest_name is not None:
            # a manifest's: what its runs sent and what they saw billed (as each run's figures count it)
            where, args = " AND run_id IN (SELECT id FROM runs WHERE manifest_name=?)", (manifest_name,)
            if self.schema >= 2:
                billed = " AND COALESCE(billed_run_id, run_id) IN (SELECT id FROM runs WHERE manifest_name=?)"
                billed_args = (manifest_name,)
        spent = self.db.execute(
            "SELECT COALESCE(SUM(billed_micros),0) FROM attempts WHERE billed_micros IS NOT NULL"
            + (billed or where), billed_args if billed else args,
        ).fetchone()[0]
        marks = ",".join("?" * len(_RESERVING))
        if run_id is not None:
            # an attempt of unknown outcome stays the money of the run that sent it: a later run neither sent
            # nor follows it; nor does one a later run found (`book_to_sender`): it is still the sender's
            pinned = " AND billed_run_id IS NULL" if self.schema >= 2 else ""
            where = (f" AND (run_id=? OR run_id<? AND state<>'unknown'{pinned}"
                     " AND job_id IN (SELECT job_id FROM run_jobs WHERE run_id=?))")
        reserved = self.db.execute(  # a video downloading is billed already: spent, not reserved
            f"SELECT COALESCE(SUM(estimate_micros),0) FROM attempts WHERE state IN ({marks})"
            f" AND billed_micros IS NULL{where}",
            (*_RESERVING, *args),
        ).fetchone()[0]
        return int(spent), int(reserved)

    def simulated_spent(self, run_id: int | None = None, *, manifest_name: str | None = None) -> int:
        """Of what `money` counts spent (of one run, or of every run of a manifest), the part a simulator billed:
        its made-up figures, nothing paid at a provider (attempts a simulator answered, `attempts.simulator`, and
        those of `provider: sim` made before gridrun kept it: `_simulated`)."""
        if run_id is not None:
            where, args = f" AND {self._billed_by}=?", (run_id,)
        elif manifest_name is not None:
            where = f" AND {self._billed_by} IN (SELECT id FROM runs WHERE manifest_name=?)"
            args = (manifest_name,)
        else:
            where, args = "", ()
        return int(self.db.execute(
            f"SELECT COALESCE(SUM(billed_micros),0) FROM attempts WHERE billed_micros IS NOT NULL AND {self._simulated}"
            + where, args,
        ).fetchone()[0])

    def run_endpoints(self, run_id: int) -> tuple[tuple[str, bool], ...]:
        """Where the run sent its creates (each endpoint once, in the order first sent: "in process" for the
        simulator built in), and whether a simulator answered there; () for a run that sent none, or one sent before
        gridrun kept where."""
        if self.schema < TAKES_MADE_AT:
            return ()
        out: dict[str, bool] = {}
        for row in self.db.execute(
            "SELECT endpoint, MAX(COALESCE(simulator, 0)) AS sim FROM attempts WHERE run_id=? AND endpoint IS NOT NULL"
            " GROUP BY endpoint ORDER BY MIN(id)", (run_id,),
        ):
            out[str(row[0])] = bool(row[1])
        return tuple(out.items())

    def snapshot(
        self, run_id: int | None = None, *, manifest_name: str | None = None,
        reuse: dict[int, tuple[tuple[Any, ...], JobRecord]] | None = None, videos: bool = True,
    ) -> Snapshot:
        """The run (latest for `manifest_name` when no id) and its jobs, read in one transaction. A run id
        given with `manifest_name` must be one of that manifest's (`run`).

        A done job's video is where a file holds its take (`_videos_as_left`): for an earlier run always, for the
        manifest's latest run once it ended when `videos` (a report's or export's, not `status`'s): a video edited
        in place or removed since is then not linked as the take, a copy elsewhere that holds it is.

        `reuse` (job id -> (row, record)), kept by the caller between snapshots, hands back the earlier
        record of each job whose row did not change, and is updated: a report rebuilt every few seconds
        then decodes only the jobs that moved."""
        self.flush()
        asked_latest = run_id is None
        if run_id is None:
            latest = self.latest_run(manifest_name)
            if latest is None:
                raise self.not_recorded(manifest_name)
            run_id = latest.id
        self.db.execute("BEGIN")
        try:
            run = self.run(run_id, None if asked_latest else manifest_name)
            rows = self.run_job_rows(run_id)
            jobs = tuple(job_record(r) for r in rows) if reuse is None else tuple(_reused(reuse, r) for r in rows)
            jobs = _as_keyed(run, jobs, rows)
            spent, reserved = self.money(run_id)
            as_left = not asked_latest and run.ended_at is not None and run.id != self._last_run_id(run.manifest_name)
            # the manifest's latest run, ended, and a later run of another manifest sharing the state since: that
            # one may have moved their shared jobs on (a re-render, its own copy of a video), not this one's
            moved_on = not as_left and run.ended_at is not None and run.id != self._last_run_id(None)
            if as_left:
                jobs = self._videos_as_left(run_id, self._as_left(run_id, jobs, run.ended_at), jobs, run.manifest_name)
                jobs = self._earlier_takes_as_left(run, jobs)
                spent, reserved = self._money_as_left(run_id, (spent, reserved))
            elif moved_on and run.ended_at is not None:
                jobs = self._moved_on_as_left(run, jobs, run.ended_at)
            else:
                jobs = self._with_earlier_takes(jobs, reuse)
            if videos and not as_left and run.ended_at is not None:
                jobs = self._videos_as_left(run_id, jobs, jobs, run.manifest_name)
            self.digests.save()  # the videos these checks hashed, remembered for the next command (one write)
            all_spent, all_reserved = self.money(manifest_name=run.manifest_name)
            all_simulated = self.simulated_spent(manifest_name=run.manifest_name)
            simulated_spent = self.simulated_spent(run.id)
            endpoints = self.run_endpoints(run.id)
            latest_id = self._last_run_id(run.manifest_name)
            others = self._runs_of_others(run.manifest_name, jobs)
            # a run whose process is gone: what a `gridrun cancel` recorded since is not its own (read only then: it
            # reads every event)
            others_since = self._others_since(run.id) if run.ended_at is None and run.process_gone() else None
            checks = self.run_checks(run.id) if run.ended_at is None else (None, None)
            expected_end = self.run_expected_end(run.id) if run.ended_at is None else None
            paused = self.run_paused(run.id) if run.ended_at is None else None
            stopping, ended = self._run_events(run, others_since)
            if as_left:  # what the run's own report said: its events, not the jobs' latest attempts
                kept, failed = self._rerenders_kept_by(run)
            else:
                kept, failed = self._rerenders_cancelled(run), self._rerenders_failed(run)
            failed, placeholders_failed = self._placeholders_failed({j.key: j.id for j in jobs}, failed, run)
            origins = self._origins(run.id)
            keys_ignored = self._keys_ignored(run.id)
            counted = self._run_summary(run)
            left = () if as_left else self._left_rendering(run)
            rendered = () if as_left else self._left_rendered(run)
            unknown = () if as_left else self._left_unknown(run)
            possibly_billed, possibly_simulated = ((), 0) if as_left else self._possibly_billed(run)
            repeated, failures = self._failures(jobs)
            earlier_billed = self._earlier_billed(jobs)
            placeholders = () if as_left else self._placeholders_left(run)
            folders = self._manifest_folders(run)
            copies = {rid: self.manifest_copy_file(rid, write=False)
                      for rid in sorted({r for _, r, _ in (*left, *rendered, *unknown)})}
            if placeholders_failed:
                jobs = _placeholders_as_failed(jobs, dict(placeholders_failed))
            jobs = self._with_ended_at(jobs, run.ended_at)
        finally:
            self.db.execute("COMMIT")
        counts: dict[str, int] = {s.value: 0 for s in JobState}
        for j in jobs:
            counts[j.state] = counts.get(j.state, 0) + 1
        # the done jobs the run was to render again and has not (not sent yet, or left so by a stop)
        queued = self._rerenders_queued(run.id)
        # the jobs marked cached whose re-render the run sent or saw cancelled or failed, put back as they were
        made_earlier = tuple(j.key for j in jobs if j.cached_from_run is not None and j.state == JobState.DONE.value
                             and origins.get(j.id) == EARLIER and j.id not in queued)
        kept_here = set(made_earlier)
        unsent = tuple(j.key for j in jobs if j.id in queued and j.state == JobState.DONE.value
                       and origins.get(j.id) == EARLIER and j.key not in kept_here) if queued else ()
        return Snapshot(run=run, jobs=jobs, counts=counts, spent_micros=spent, reserved_micros=reserved,
                        manifest_spent_micros=all_spent, manifest_reserved_micros=all_reserved,
                        manifest_latest_run=latest_id, other_runs=others, stopping=stopping, ended=ended,
                        rerenders_cancelled=len(kept), rerenders_cancelled_keys=kept, rerenders_failed=failed,
                        origins=origins, made_earlier=made_earlier, found_cached=counted.cached, made_earlier_count=counted.made_earlier,
                        rerenders_unsent=unsent,
                        left_rendering=left, left_rendered=rendered, left_unknown=unknown, placeholders_left=placeholders,
                        possibly_billed=possibly_billed, possibly_billed_simulated_micros=possibly_simulated,
                        repeated=repeated, failures=failures,
                        earlier_billed=earlier_billed,
                        placeholders_failed=placeholders_failed,
                        endpoints=endpoints, spent_simulated_micros=simulated_spent,
                        manifest_spent_simulated_micros=all_simulated,
                        left_copies={rid: str(path) for rid, (path, _) in copies.items()},
                        copies_missing=tuple(rid for rid, (_, there) in copies.items() if not there),
                        others_since=others_since, keys_ignored=keys_ignored,
                        next_check_at=checks[0], answered_at=checks[1], expected_end_at=expected_end,
                        paused_until=None if paused is None else paused[0],
                        paused_by=None if paused is None else paused[1],
                        prices_from=self._prices_from(run) if any(j.billed_above for j in jobs) else "",
                        manifest_folders=folders)

    def _with_ended_at(self, jobs: tuple[JobRecord, ...], until: float | None) -> tuple[JobRecord, ...]:
        """`jobs`, each that ended badly (`ENDED_BADLY`) with `ended_at`: the time of its latest event of the state it
        is in, up to `until` (an ended run's end: where that run left it). Read only when there are such jobs, through
        `events_ends` (schema 7)."""
        bad = {j.id: j.state for j in jobs if j.state in ENDED_BADLY}
        if not bad:
            return jobs
        until = float("inf") if until is None else until
        at: dict[int, float] = {}
        ids = list(bad)
        for start in range(0, len(ids), 900):  # SQLite's bound on the parameters of one statement
            chunk = ids[start:start + 900]
            marks = ",".join("?" * len(chunk))
            for job_id, kind, when in self.db.execute(
                f"SELECT job_id, kind, MAX(at) FROM events WHERE {_END_KINDS} AND at <= ? AND job_id IN ({marks})"
                " GROUP BY job_id, kind", (until, *chunk),
            ):
                if kind == bad[job_id]:
                    at[job_id] = when
        return tuple(dataclasses.replace(j, ended_at=at[j.id]) if j.id in at else j for j in jobs)

    def _keys_ignored(self, run_id: int) -> int:
        """How many of the run's jobs had a create, sent again with its idempotency key, answered with a new video
        while another made under the key was in the request log (event KEY_IGNORED)."""
        return int(self.db.execute("SELECT COUNT(DISTINCT job_id) FROM events WHERE run_id=? AND kind=?",
                                   (run_id, KEY_IGNORED)).fetchone()[0])

    def _prices_from(self, run: RunRecord) -> str:
        """Where the prices of the run's jobs come from (`capabilities.prices_from`): the capabilities files of the
        manifest as the run's plan was made from it (its copy), else gridrun's own."""
        import yaml

        from .providers import capabilities

        try:
            data = yaml.safe_load(self.manifest_copy(run.id) or "{}")
        except yaml.YAMLError:
            data = None
        names = data.get("capabilities") if isinstance(data, dict) else None
        names = [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
        return capabilities.prices_from(run.provider, run.model, names, Path(run.manifest_path).parent)

    def _left_rendering(self, run: RunRecord) -> tuple[tuple[str, int, int], ...]:
        """The jobs sent by runs of the run's manifest, rendering still (submitted, running), that the run does not
        have (a run with --leave-in-flight left them): (key, the run that sent it, its estimate), which the
        manifest's reserve counts and no run follows; `gridrun cancel` stops them."""
        return tuple((str(r[0]), int(r[1]), int(r[2])) for r in self.db.execute(
            "SELECT j.key, a.run_id, a.estimate_micros FROM jobs j JOIN attempts a ON a.job_id = j.id"
            " AND a.n = j.attempts WHERE j.state IN (?, ?) AND a.billed_micros IS NULL"
            " AND a.run_id IN (SELECT id FROM runs WHERE manifest_name=?)"
            " AND NOT EXISTS (SELECT 1 FROM run_jobs rj WHERE rj.run_id=? AND rj.job_id = j.id)"
            " ORDER BY a.run_id, j.id",
            (S.SUBMITTED.value, S.RUNNING.value, run.manifest_name, run.id),
        ))

    def _left_rendered(self, run: RunRecord) -> tuple[tuple[str, int, int], ...]:
        """The jobs sent by runs of the run's manifest, rendered and paid but not downloaded (downloading: a run
        stopped fetching them, or `gridrun cancel` found them finished), that the run does not have: (key, the run
        that sent it, what it counted), whose videos only the manifest put back as that run had it downloads."""
        return tuple((str(r[0]), int(r[1]), int(r[2])) for r in self.db.execute(
            "SELECT j.key, a.run_id, COALESCE(a.billed_micros, a.estimate_micros) FROM jobs j JOIN attempts a"
            " ON a.job_id = j.id AND a.n = j.attempts WHERE j.state = ?"
            " AND a.run_id IN (SELECT id FROM runs WHERE manifest_name=?)"
            " AND NOT EXISTS (SELECT 1 FROM run_jobs rj WHERE rj.run_id=? AND rj.job_id = j.id)"
            " ORDER BY a.run_id, j.id",
            (S.DOWNLOADING.value, run.manifest_name, run.id),
        ))

    def _left_unknown(self, run: RunRecord) -> tuple[tuple[str, int, int], ...]:
        """The attempts of unknown outcome that earlier runs of the run's manifest sent and that are not settled:
        (key, the run that sent it, its estimate). The manifest's reserve counts them (they may have been paid),
        the run's own does not (`money`: they stay the money of the run that sent them); `gridrun retry --unknown`
        settles them."""
        return tuple((str(r[0]), int(r[1]), int(r[2])) for r in self.db.execute(
            "SELECT j.key, a.run_id, a.estimate_micros FROM attempts a JOIN jobs j ON j.id = a.job_id"
            " WHERE a.state = ? AND a.billed_micros IS NULL AND a.run_id < ?"
            " AND a.run_id IN (SELECT id FROM runs WHERE manifest_name=?) ORDER BY a.run_id, j.id",
            (S.UNKNOWN.value, run.id, run.manifest_name),
        ))

    def _possibly_billed(self, run: RunRecord) -> tuple[tuple[tuple[str, int, int], ...], int]:
        """The attempts of unknown outcome that runs of the run's manifest sent and `retry --unknown` sent again
        (`abandon_attempt`: their videos lost by the provider, or no request log to look them up in), never billed
        as far as gridrun knows: (key, the run that sent it, its estimate). Settled as failed, they count in no
        budget and no run's spent, yet the provider may have billed them: `status` and the export keep them in
        sight. With them, what a simulator answered of their estimates (`_simulated`): made-up figures, nothing paid."""
        rows = self.db.execute(
            f"SELECT j.key, attempts.run_id, attempts.estimate_micros, attempts.error, {self._simulated}"
            " FROM attempts JOIN jobs j ON j.id = attempts.job_id"
            " WHERE attempts.state = ? AND attempts.billed_micros IS NULL AND attempts.error LIKE '%retry --unknown%'"
            " AND attempts.run_id IN (SELECT id FROM runs WHERE manifest_name=?)"
            " ORDER BY attempts.run_id, j.id, attempts.n",
            (S.FAILED.value, run.manifest_name),
        ).fetchall()
        kept = [r for r in rows if str(r[3]).endswith(ABANDONED_LOST_SUFFIX) or r[3] == ABANDONED_NEVER_KNOWN]
        return (tuple((str(r[0]), int(r[1]), int(r[2])) for r in kept),
                sum(int(r[2]) for r in kept if r[4]))

    def manifest_copy_file(
        self, run_id: int, *, folder: Path | None = None, write: bool = True, problems: list[OSError] | None = None,
    ) -> tuple[Path, bool]:
        """Where the run's copy of the manifest is (.runs/run-N.yaml in `folder`, the output folder the manifest
        names now, else in the one the run recorded), what puts the manifest back as that run had it, and whether
        it is there. A copy removed since (the output folder's .runs/ tidied by hand) is written again from the
        text the state keeps of it, but only in `folder`, an output folder that is there (the one the run recorded
        may be a moved project's old path, or the mount point of a disk not mounted: nothing is made there), and
        unless `write` is False (a look that writes nothing), the folder is written by another state (the original
        of a copied project) or it cannot be written (then False, with the path where it was looked for).

        Run numbers are each state's own: a .runs/run-N.yaml holding another text than the one the state keeps
        (another state's run N wrote the folder since, a state begun again) is never named. This run's copy,
        kept aside then under .runs/superseded/manifests/ (`manifest_kept_path`), is named instead, or written
        there again. `problems`: given, the error of a write that failed (a full disk) is added to it."""
        recorded = Path(self.run(run_id).outputs_dir) / ".runs" / f"run-{run_id}.yaml"
        path = recorded if folder is None else Path(folder) / ".runs" / recorded.name
        text = self.manifest_copy(run_id)
        data = text.encode() if text else None

        def own(there: Path) -> bool:
            """`there` is a file holding the state's text of the copy (any file when the state keeps none)."""
            if data is None:
                return there.is_file()
            try:
                return there.is_file() and there.stat().st_size == len(data) and there.read_bytes() == data
            except OSError:
                return False

        taken = False  # path holds another manifest's copy: the state's own goes aside
        for there in dict.fromkeys((path, recorded)):
            if own(there):
                return there, True
            if data is not None and there.is_file():
                aside = manifest_kept_path(there.parent.parent, data, there.name)
                if own(aside):
                    return aside, True
                taken = taken or there == path
        if taken:
            assert data is not None
            path = manifest_kept_path(path.parent.parent, data, path.name)
        if folder is None or not Path(folder).is_dir() or not write:
            return path, False
        writer = outputs_writer(Path(folder))
        if not text or writer is not None and Path(writer["state_dir"]) != self.path.parent.resolve():
            return path, False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, text.encode())
        except OSError as exc:
            if problems is not None:
                problems.append(exc)
            return path, False
        return path, True

    def _placeholders_left(self, run: RunRecord) -> tuple[str, ...]:
        """Of the ended run's jobs, the done ones a simulator made at another endpoint whose re-render the run did
        not send (a stop: its budget, Ctrl-C, a provider it could not reach), left as they were (event
        placeholder-left): a plain run re-renders them: their keys, in plan order. Read only for a run that stopped
        so."""
        if run.status not in ("budget", "interrupted", "refused", "failed"):
            return ()
        return tuple(str(r[0]) for r in self.db.execute(
            "SELECT DISTINCT rj.key FROM events e JOIN run_jobs rj ON rj.job_id = e.job_id AND rj.run_id = e.run_id"
            " JOIN jobs j ON j.id = e.job_id WHERE e.run_id=? AND e.kind='placeholder-left' AND j.state='done'"
            " AND rj.cached_from_run IS NOT NULL ORDER BY rj.position",
            (run.id,),
        ))

    def _rerenders_cancelled(self, run: RunRecord) -> tuple[str, ...]:
        """Of the run's jobs, the done ones whose last attempt, a re-render the run sent or saw cancelled, was
        cancelled: each put back as it was, its earlier video kept (`cancel_job`): their keys, in plan order."""
        until = run.ended_at if run.ended_at is not None else float("inf")
        return tuple(str(r[0]) for r in self.db.execute(
            "SELECT rj.key FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id"
            " JOIN attempts a ON a.job_id = j.id AND a.n = j.attempts"
            " WHERE rj.run_id=? AND j.state='done' AND a.state='cancelled'"
            " AND (a.run_id=? OR a.ended_at >= ? AND a.ended_at <= ?) ORDER BY rj.position",
            (run.id, run.id, run.started_at, until),
        ))

    def _rerenders_kept_by(self, run: RunRecord) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """An earlier run's re-renders of done jobs that were cancelled (their keys) and those that failed ((key,
        error)), in plan order, each putting its job back as it was, as the run recorded them (events
        `rerun-cancelled`, `rerun-failed`): later runs' attempts of the same jobs do not change what this run met."""
        cancelled: dict[str, None] = {}
        failed: dict[str, str] = {}
        for key, kind, detail in self.db.execute(
            "SELECT rj.key, e.kind, e.detail FROM events e JOIN run_jobs rj ON rj.job_id = e.job_id"
            f" AND rj.run_id = e.run_id WHERE e.run_id=? AND e.kind IN {_KEPT_KINDS} ORDER BY rj.position, e.id",
            (run.id,),
        ):
            key = str(key)  # the last of a job's events says how its re-render ended
            if kind == "rerun-cancelled":
                cancelled[key] = None
                failed.pop(key, None)
                continue
            try:
                error = json.loads(detail).get("error") if detail else None
            except (ValueError, AttributeError):
                error = None
            cancelled.pop(key, None)
            failed[key] = str(error or "")
        return tuple(cancelled), tuple(failed.items())

    def _placeholders_failed_in(self, run: RunRecord, last: Mapping[str, int]) -> int:
        """How many of the run's done jobs (its manifest's latest run `last`) are the simulator's placeholders
        made at another endpoint whose render the run met failed (`Snapshot.placeholders_failed`, as `snapshot`
        finds them): failed in the run, not done, though the store keeps them done with the placeholder."""
        as_left = run.ended_at is not None and run.id != last[run.manifest_name]
        failed = self._rerenders_kept_by(run)[1] if as_left else self._rerenders_failed(run)
        if not failed:
            return 0
        ids = {str(r[0]): int(r[1]) for r in self.db.execute("SELECT key, job_id FROM run_jobs WHERE run_id=?",
                                                             (run.id,))}
        return len(self._placeholders_failed(ids, failed, run)[1])

    def _placeholders_failed(self, ids: Mapping[str, int], failed: tuple[tuple[str, str], ...], run: RunRecord
                             ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """`failed` (the run's failed re-renders of done jobs, (key, error)), `ids` its jobs' ids by key, split in
        two: the re-renders asked for (--force, retry), and the renders of placeholders a simulator made at another
        endpoint (`plan`'s "render again"; the reason of the reset before the run ended), whose jobs never had a
        video of this provider's. A later run's re-render of the same job (--force) does not change what this one
        met."""
        if not failed:
            return failed, ()
        placeholders = tuple(f for f in failed if f[0] in ids
                             and self.rerun_reason(ids[f[0]], until=run.ended_at) == SIMULATOR_ELSEWHERE)
        if not placeholders:
            return failed, ()
        return tuple(f for f in failed if f not in placeholders), placeholders

    def rerun_reason(self, job_id: int, *, until: float | None = None) -> str | None:
        """Why the re-run its current attempt belongs to was asked for (retry, --force, a simulator's placeholder
        made at another endpoint; the reason of the reset `_done_before_rerun` reads), or None when it never was
        re-run. The failure retries a run made on its own since belong to that re-run. `until`: of the re-run
        its attempt belonged to at that time (a run's end), not of a later one."""
        for row in self.db.execute(
            f"SELECT detail FROM events WHERE job_id=? AND {_RESET_KINDS} AND kind='reset' AND at <= ? ORDER BY id DESC",
            (job_id, float("inf") if until is None else until),
        ):
            decided, _ = _rerun_of(row["detail"])
            if decided:
                detail = json.loads(row["detail"]) if row["detail"] else {}
                reason = detail.get("reason") if isinstance(detail, dict) else None
                return reason if isinstance(reason, str) else None
        return None

    def _failures(self, jobs: Sequence[JobRecord]) -> tuple[dict[str, tuple[int, str, str]], dict[str, Failures]]:
        """Of the `jobs` that ended failed or rejected, key -> (how many attempts, the code, the job's state) of those
        of more than one attempt every one of which ended with the same provider's code (`options.error_code`): the
        same request refused alike each time (content moderation, an invalid request), which sending it again as
        it is is unlikely to change (`Snapshot.repeated`); and key -> their attempts' codes in figures, each such
        job's (`Snapshot.failures`). One query."""
        from .options import error_code

        ids = {j.id: j for j in jobs if j.state in (S.FAILED.value, S.REJECTED.value)}
        if not ids:
            return {}, {}
        codes: dict[int, list[str | None]] = {}
        ended_badly: dict[int, int] = {}
        for chunk, marks in _chunked(list(ids)):
            for r in self.db.execute(f"SELECT job_id, error, state FROM attempts WHERE job_id IN ({marks}) ORDER BY n",
                                     chunk):
                jid = int(r[0])
                codes.setdefault(jid, []).append(error_code(r[1]))
                ended_badly[jid] = ended_badly.get(jid, 0) + (r[2] in (S.FAILED.value, S.REJECTED.value))
        repeated: dict[str, tuple[int, str, str]] = {}
        failures: dict[str, Failures] = {}
        for jid, found in codes.items():
            job = ids[jid]
            same = found[0] is not None and len(set(found)) == 1
            if same and len(found) > 1 and job.attempts > 1:
                repeated[job.key] = (len(found), str(found[0]), job.state)
            failures[job.key] = Failures(code=error_code(job.error), attempts=ended_badly.get(jid, 0), same_code=same)
        return repeated, failures

    def _earlier_billed(self, jobs: Sequence[JobRecord]) -> dict[str, tuple[EarlierBilled, ...]]:
        """Of the `jobs`, key -> the billed attempts up to its current one (the one its `cost_micros` counts, its
        `provider_id`'s), other than that one, that left it no video (failed, cancelled, expired: a render failed
        with a charge that a failure retry or `gridrun retry` sent again, or a re-render after the current take,
        cut short or failed with a charge, which left the job as it was: `rerender`). Each was spent (`money` counts it)
        though no figure of the job's current attempt has it (`Snapshot.earlier_billed`); a take a re-render
        replaced (done) is not among them: it is the cost of the run that made it. One query."""
        ids = {j.id: j for j in jobs if j.attempts > 1}
        if not ids:
            return {}
        rows: dict[int, list[tuple[Any, ...]]] = {}
        for chunk, marks in _chunked(list(ids)):
            for r in self.db.execute(f"SELECT job_id, n, {self._billed_by}, billed_micros, state, provider_id "
                                     f"FROM attempts WHERE job_id IN ({marks}) AND (billed_micros IS NOT NULL"
                                     " OR state = 'done') ORDER BY job_id, n", chunk):
                rows.setdefault(int(r[0]), []).append(tuple(r))
        found: dict[str, list[EarlierBilled]] = {}
        for job_id, attempts in rows.items():
            job = ids[job_id]
            if job.provider_id is not None and job.counted_micros is not None:
                # the current attempt, its `provider_id`'s; a billed attempt after it is a re-render (--force,
                # retry) that left the job as it was, its video kept
                now = next((int(r[1]) for r in attempts if r[5] == job.provider_id), job.attempts)
                current = {int(r[1]) for r in attempts if r[5] == job.provider_id}
            else:
                now, current = job.attempts, {job.attempts}
            for _, n, run, billed, state, _ in attempts:
                if billed is None or state == "done" or int(n) > job.attempts or int(n) in current:
                    continue
                found.setdefault(job.key, []).append(EarlierBilled(run, int(billed), str(state), int(n) > now))
        return {key: tuple(bills) for key, bills in found.items()}

    def _rerenders_failed(self, run: RunRecord) -> tuple[tuple[str, str], ...]:
        """Of the run's jobs, the done ones whose last attempt, a re-render the run sent or saw end, failed or was
        refused, each put back as it was, its earlier video kept (`rerender_failed`): (key, the attempt's error),
        in plan order."""
        until = run.ended_at if run.ended_at is not None else float("inf")
        return tuple((str(r[0]), str(r[1] or "")) for r in self.db.execute(
            "SELECT rj.key, a.error FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id"
            " JOIN attempts a ON a.job_id = j.id AND a.n = j.attempts"
            " WHERE rj.run_id=? AND j.state='done' AND a.state IN ('failed', 'rejected')"
            " AND (a.run_id=? OR a.ended_at >= ? AND a.ended_at <= ?) ORDER BY rj.position",
            (run.id, run.id, run.started_at, until),
        ))

    def _run_events(self, run: RunRecord, others_since: float | None = None) -> tuple[str | None, tuple[float, ...]]:
        """Why the run stopped sending (its last run-stopping event), and when each of the jobs it sent first
        reached a final state during it (cached ones never do; one an earlier run sent and this one collected ends
        at once, which is no pace; a job with no send time recorded, as an older gridrun left some, counts),
        sorted: what its own live progress counts. One query,
        which reads only the run's stopping events and the jobs' ends since it started."""
        until = run.ended_at if run.ended_at is not None else float("inf")
        before = float("inf") if others_since is None else others_since  # a `gridrun cancel`'s are not its own
        rows = self.db.execute(  # through `events_stops` and `events_ends` (schema 7), one each side of the OR
            "SELECT kind, job_id, at, detail FROM events WHERE run_id=? AND kind='run-stopping'"
            f" OR {_END_KINDS} AND at >= ? AND at <= ? AND at < ? AND job_id IN"
            " (SELECT rj.job_id FROM run_jobs rj JOIN jobs j ON j.id = rj.job_id WHERE rj.run_id=?"
            " AND rj.cached_from_run IS NULL AND (j.submitted_at IS NULL OR j.submitted_at >= ?)) ORDER BY id",
            (run.id, run.started_at, until, before, run.id, run.started_at),
        ).fetchall()
        stopping: str | None = None
        first: dict[int, float] = {}
        for kind, job_id, at, detail in rows:
            if kind == "run-stopping":
                why = json.loads(detail or "{}").get("why")
                stopping = str(why) if why else stopping
            else:
                first.setdefault(job_id, at)
        return stopping, tuple(sorted(first.values()))

    def manifest_copy(self, run_id: int) -> str:
        """The manifest's text as the run's plan was made from it ("" when it could not be read)."""
        row = self.db.execute("SELECT manifest_copy FROM runs WHERE id=?", (run_id,)).fetchone()
        return (row[0] or "") if row is not None else ""

    def _runs_of_others(self, manifest_name: str, jobs: Sequence[JobRecord]) -> dict[int, str]:
        """The runs that paid for, sent or made `jobs` and are not runs of `manifest_name`: run id -> their manifest's
        name."""
        ids = sorted({r for j in jobs for r in (j.paid_run, j.cached_from_run, j.sent_run) if r is not None})
        out: dict[int, str] = {}
        for chunk, marks in _chunked(ids):
            rows = self.db.execute(f"SELECT id, manifest_name FROM runs WHERE id IN ({marks}) AND manifest_name != ?",
                                   [*chunk, manifest_name])
            out.update((int(r[0]), str(r[1])) for r in rows)
        return out

    def _manifest_folders(self, run: RunRecord) -> tuple[str, ...]:
        """The folders of the manifests of the runs of `run`'s manifest name, its own first, then the others, a folder
        inside another before it (`Snapshot.manifest_folders`)."""
        own = os.path.dirname(run.manifest_path)
        rows = self.db.execute("SELECT DISTINCT manifest_path FROM runs WHERE manifest_name = ?", (run.manifest_name,))
        others = {os.path.dirname(str(r[0])) for r in rows} - {own}
        return (own, *sorted(others, key=lambda f: (-len(f), f)))

    def _last_run_id(self, manifest_name: str | None) -> int | None:
        """The latest run of `manifest_name` (None: of any manifest)."""
        if manifest_name is None:
            row = self.db.execute("SELECT MAX(id) FROM runs").fetchone()
        else:
            row = self.db.execute("SELECT MAX(id) FROM runs WHERE manifest_name=?", (manifest_name,)).fetchone()
        return None if row is None else row[0]

    def _as_left(self, run_id: int, jobs: tuple[JobRecord, ...], ended_at: float) -> tuple[JobRecord, ...]:
        """The jobs of an earlier run as it left them: what it recorded when it ended (`final`); for a state
        from before that was kept, each one's state and error as of its end (`_as_of`)."""
        if self.schema < 4:
            return self._as_of(jobs, ended_at)
        finals = {r[0]: r[1] for r in self.db.execute("SELECT job_id, final FROM run_jobs WHERE run_id=?", (run_id,))}
        out, unknown = [], []
        for job in jobs:
            final = json.loads(finals[job.id]) if finals.get(job.id) else None
            if isinstance(final, dict):
                kept = {f: final[f] for f in _FINAL_FIELDS if f in final}
                kept.setdefault("render_span", None)  # kept since schema 12: the run's own render is not known
                if "cost_reported_micros" not in final and kept.get("attempts", job.attempts) != job.attempts:
                    kept["cost_reported_micros"] = None  # kept since: what the run's own attempt reported is lost
                out.append(job if all(getattr(job, f) == v for f, v in kept.items()) else dataclasses.replace(job, **kept))
            else:
                out.append(job)
                unknown.append(job)
        if unknown:  # ended before its jobs were kept (an older gridrun): from the events
            redone = {j.id: j for j in self._as_of(tuple(unknown), ended_at)}
            out = [redone.get(j.id, j) for j in out]
        # a later run's re-render made another attempt current: the run's own was billed to its run; a job the run
        # left done, the attempt that made its video (a re-render the run saw fail put it back as it was)
        was = {j.id: j.attempts for j, now in zip(out, jobs) if j.attempts != now.attempts}
        if was:
            runs = self._attempt_runs(was, {j.id: j.provider_id or "" for j in out
                                            if j.id in was and j.state == S.DONE.value})
            out = [dataclasses.replace(j, billed_run=runs[j.id][0], sent_run=runs[j.id][1]) if j.id in runs else j
                   for j in out]
        # another take of the job made current since (`take_back`, the attempts alike): the run's own was billed
        # to the run that saw its render billed
        takes = {j.id: j.provider_id for j, now in zip(out, jobs) if j.id not in was and j.state == S.DONE.value
                 and j.provider_id and j.provider_id != now.provider_id}
        paid = {}
        for job_id, provider_id in takes.items():
            row = self._billed_by_render(job_id, provider_id)
            if row is not None:
                paid[job_id] = (row[0], row[1])
        return tuple(dataclasses.replace(j, billed_run=paid[j.id][0], sent_run=paid[j.id][1]) if j.id in paid else j
                     for j in out)

    def _moved_on_as_left(self, run: RunRecord, now: tuple[JobRecord, ...], ended_at: float) -> tuple[JobRecord, ...]:
        """The jobs of a manifest's latest run, ended, after a later run of another manifest sharing the state: as
        the run left them those that run moved on (re-rendered: another attempt is current; or, done as the run left
        them, another take or a video recorded outside the run's folder: that manifest's own copy), as they are now
        the others. A job the run left in flight that the later run merely collected is done now, its money spent
        by the run that saw it billed: it is shown so, not as the running job (and reserve) the run left."""
        left = self._as_left(run.id, now, ended_at)
        home = Path(run.outputs_dir)
        moved = {n.id for j, n in zip(left, now) if j.attempts != n.attempts or j.state == S.DONE.value and (
            j.provider_id != n.provider_id or j.sha256 != n.sha256
            or not n.output_path or not Path(n.output_path).is_relative_to(home))}
        if not moved:
            return now
        shown = self._videos_as_left(run.id, tuple(j if j.id in moved else n for j, n in zip(left, now)), now,
                                     run.manifest_name)
        return tuple(j if j.id in moved else n for j, n in zip(shown, now))

    def _wrote(self, outputs_dir: str) -> bool:
        """Whether the output folder `outputs_dir` (an earlier run's, before `outputs_dir:` was changed) is one this
        state wrote: its lock names this state folder. A copied project's earlier runs name the folder it was
        copied from, whose lock names the state there."""
        writer = outputs_writer(Path(outputs_dir))
        return writer is not None and _same_folder(writer["state_dir"], self.path.parent.resolve())

    def _videos_as_left(self, run_id: int, left: tuple[JobRecord, ...], now: tuple[JobRecord, ...],
                        manifest_name: str) -> tuple[JobRecord, ...]:
        """An earlier run's jobs as it left them (`left`; `now`, the same jobs as recorded now), each done one
        with its video where it is now, in the output folder of the manifest's latest run, or in the run's own when
        this state wrote it (`outputs_dir:` changed since): a report links only inside its own project, a copied
        one's never into the folder it came from. A video is where a file
        holds it (`holds_take`: the sidecar beside it names the job and the video's SHA-256, else its bytes
        have it), looked for in turn: where the run left it, unless a later video of the job was recorded since
        (a SHA-256 other than the one recorded now) or a changed manifest set it aside; where a later render of
        the job kept it when it replaced it at its output path (`keep_take`, under .runs/superseded/
        <hash16>/<sha16>/, event `superseded`); where a changed manifest set it aside (`resume._put_aside`:
        `.runs/superseded/<hash16>/<name>`, its SHA-256 unchanged), first in the latest run's folder (a
        copied or moved project's own copy), then where it was recorded; while no later video was recorded (a
        re-render failed), the path its last reset from done left. A file another job's video, or another take,
        took the place of (a later run's, put back where the run's was kept aside as an edited file) is not it.
        When no file holds it, the job is `replaced`: the take is not kept; `missing` too when no file at all is
        at its path (deleted, where `gridrun run` fetches the job's video again)."""
        own = self._own_videos(run_id, left, now, manifest_name)
        # where the run left each job's video (recorded when it ended: in its own folder, `outputs_dir:` changed since)
        left_at = self._paths_left(run_id)
        written = {j.id: left_at.get(j.id) or j.output_path for j in left}
        left = tuple(dataclasses.replace(j, output_path=own[j.id]) if j.id in own else j for j in left)
        inside, folder = self._link_homes(manifest_name)

        def holds(path: str | None, job: JobRecord) -> bool:
            return bool(path) and inside(path) and holds_take(path, job.hash, job.sha256 or "", self.digests)

        def first_holding(paths: Sequence[str | None], job: JobRecord) -> str | None:
            """The first of `paths` that holds the job's take, one this user can read before one it may not (a
            teammate's file, in an `unreadable_videos` block)."""
            barred = None
            for p in paths:
                if holds(p, job):
                    if unreadable_why(p) is None:
                        return p
                    barred = barred or p
            return barred

        found: dict[int, str] = {}
        missed: dict[int, JobRecord] = {}
        for job, n in zip(left, now):
            if job.id in own or job.state != S.DONE.value or not job.sha256 or not n.output_path:
                continue
            name = os.path.basename(n.output_path)
            if job.sha256 != n.sha256:
                first: list[str | None] = []
            elif _set_aside(n):  # set aside by a changed manifest: the latest run's folder's copy, then as recorded
                first = [str(folder / job.hash[:16] / name) if folder is not None else None, n.output_path]
            else:
                first = [n.output_path]
            own_path = left_at.get(job.id)
            if own_path and own_path not in first:  # after the latest run's folder, where the results are written
                first.append(own_path)
            at = first_holding(first, job)
            if at is not None:
                found[job.id] = at
            else:
                missed[job.id] = n
        if missed:
            recorded = self._kept_takes(list(missed))
            elsewhere = self._takes_left(list(missed))
            for job in left:
                n = missed.get(job.id)
                if n is None:
                    continue
                places = [recorded.get((job.id, job.sha256 or ""))]
                if folder is not None:  # first where the latest run keeps them: a copied project's own copy
                    places.insert(0, str(take_path(folder / job.hash[:16], job.sha256 or "",
                                                   os.path.basename(n.output_path))))
                if n.sha256 is None:
                    earlier = self.earlier_take(job.id)
                    places.append(earlier[0] if earlier is not None and earlier[1] == job.sha256 else None)
                # where any run left this take (another output folder of the project's, `outputs_dir:` changed)
                places.extend(p for p in elsewhere.get((job.id, job.sha256 or ""), ()) if p not in places)
                at = first_holding(places, job)
                if at is not None:
                    found[job.id] = at
        out = []
        for job in left:
            if job.id in found:
                out.append(job if job.output_path == found[job.id] else dataclasses.replace(job, output_path=found[job.id]))
            elif job.id in missed:  # another file at its path, or none (deleted: `missing`)
                n = missed[job.id]
                out.append(dataclasses.replace(job, replaced=True, missing=not os.path.lexists(n.output_path),
                                               later_take=job.later_take or job.sha256 != n.sha256))
            else:
                out.append(job)
        return tuple(j if not written[j.id] or j.output_path == written[j.id] or j.written_path is not None
                     else dataclasses.replace(j, written_path=written[j.id]) for j in out)

    def _link_homes(self, manifest_name: str) -> tuple[Callable[[str], bool], Path | None]:
        """Where an earlier run's page may link a video (`_videos_as_left`): whether a path is inside the output
        folder of the manifest's latest run, or inside another of the state's runs' that this state wrote (its lock
        names this state; a copied project's runs name the folder it came from), told lazily (any path, where the
        manifest has no run); and the folder under which the latest run keeps earlier takes (.runs/superseded/).
        The latest run is the one of the output folder the store is opened for (`latest_run_of_folder`)."""
        latest = self.latest_run_of_folder(manifest_name, None)
        if latest is None:
            return (lambda path: True), None
        homes: dict[str, bool | None] = {os.path.join(os.path.normpath(d), ""): None
                                         for (d,) in self.db.execute("SELECT DISTINCT outputs_dir FROM runs")}
        homes[os.path.join(os.path.normpath(latest.outputs_dir), "")] = True

        def inside(path: str) -> bool:
            at = os.path.normpath(path)
            for home, ok in homes.items():
                if at.startswith(home):
                    if ok is None:
                        ok = homes[home] = self._wrote(home)
                    if ok:
                        return True
            return False

        return inside, superseded_dir(latest.outputs_dir)

    def _earlier_takes_as_left(self, run: RunRecord, left: tuple[JobRecord, ...]) -> tuple[JobRecord, ...]:
        """An earlier run's jobs as it left them (`left`), each one it left re-rendering (--force, retry of a done
        job: planned again, in flight, of unknown outcome) with the take that was its video when the run stopped
        (`earlier`; the reset before the run's end tells which): where a file holds it now (`holds_take`), at its
        path while no later take replaced it, else where a later render kept it aside (the latest run's
        .runs/superseded/ first, a copied project's own copy; then where event `superseded` recorded it); not
        kept (`kept` False) when no file does. A page of a run killed with its re-renders in flight, which a
        later run collected, shows what the run left."""
        ids = [j.id for j in left if j.earlier is None and JobState(j.state) in _REDOING]
        if not ids or run.ended_at is None:
            return left
        was: dict[int, dict[str, Any]] = {}
        seen: set[int] = set()
        for chunk, marks in _chunked(ids):
            for row in self.db.execute(
                f"SELECT job_id, detail FROM events WHERE job_id IN ({marks}) AND {_RESET_KINDS} AND kind='reset'"
                " AND at <= ? ORDER BY id DESC", (*chunk, run.ended_at),
            ):
                jid = int(row["job_id"])
                if jid in seen:
                    continue
                decided, done = _rerun_of(row["detail"])
                if not decided:
                    continue
                seen.add(jid)
                if done is not None and isinstance(done.get("output_path"), str) and done["output_path"]:
                    was[jid] = done
        if not was:
            return left
        inside, folder = self._link_homes(run.manifest_name)
        recorded = self._kept_takes(list(was))
        out = []
        for job in left:
            done = was.get(job.id)
            if done is None:
                out.append(job)
                continue
            sha, path = str(done["sha256"]), str(done["output_path"])
            places = [path, str(take_path(folder / job.hash[:16], sha, os.path.basename(path))) if folder else None,
                      recorded.get((job.id, sha))]
            at = next((p for p in places if p and inside(p) and holds_take(p, job.hash, sha, self.digests)), None)
            cost, made = done.get("cost_micros"), done.get("done_run_id")
            out.append(dataclasses.replace(job, earlier=EarlierTake(
                at or path, sha, cost if isinstance(cost, int) else None, made if isinstance(made, int) else None,
                kept=at is not None)))
        return tuple(out)

    def _own_videos(self, run_id: int, left: tuple[JobRecord, ...], now: tuple[JobRecord, ...],
                    manifest_name: str) -> dict[int, str]:
        """Of an earlier run's done jobs (`left`, as it left them; `now`, as recorded now), those whose video is
        recorded now outside the output folder of the manifest's latest run (another manifest sharing the state
        copied or re-rendered it into its own folder) while the run's own is still where the run left it, in that
        folder, as the file there holds it (`holds_take`): job id -> that path. The latest run is the one of the
        output folder the store is opened for (`latest_run_of_folder`)."""
        out: dict[int, str] = {}
        latest = self.latest_run_of_folder(manifest_name, None)
        if self.schema < 4 or latest is None:
            return out
        home = Path(latest.outputs_dir)
        left_at = {r[0]: r[1] for r in self.db.execute(  # kept in `final` since it has this field
            "SELECT job_id, json_extract(final, '$.output_path') FROM run_jobs WHERE run_id=? AND final IS NOT NULL",
            (run_id,))}
        for job, n in zip(left, now):
            at = left_at.get(job.id)
            if (job.state != S.DONE.value or not job.sha256 or not at or at == n.output_path
                    or Path(n.output_path).is_relative_to(home)):
                continue
            if Path(at).is_relative_to(home) and holds_take(at, job.hash, job.sha256, self.digests):
                out[job.id] = at
        return out

    def paths_left_by(self, manifest_name: str, *, before: int | None = None) -> dict[int, str]:
        """Where the latest run of `manifest_name` (before run `before`, the one starting) that recorded its jobs as
        it left them (`final`: a run killed outright recorded none) left their videos: job id -> path. Where a
        manifest's own take of a job it now puts at another path (a sweep renamed, an output template changed) is."""
        if self.schema < 4:
            return {}
        for (run_id,) in self.db.execute("SELECT id FROM runs WHERE manifest_name=? AND id < ? ORDER BY id DESC",
                                         (manifest_name, before if before is not None else 2**62)).fetchall():
            if self.db.execute("SELECT 1 FROM run_jobs WHERE run_id=? AND final IS NOT NULL LIMIT 1",
                               (run_id,)).fetchone() is not None:
                return self._paths_left(int(run_id))
        return {}

    def _paths_left(self, run_id: int) -> dict[int, str]:
        """Where the run left its jobs' videos, as it recorded when it ended (`final`): job id -> path."""
        if self.schema < 4:
            return {}
        return {r[0]: str(r[1]) for r in self.db.execute(
            "SELECT job_id, json_extract(final, '$.output_path') FROM run_jobs WHERE run_id=? AND final IS NOT NULL",
            (run_id,)) if r[1]}

    def _takes_left(self, job_ids: Sequence[int]) -> dict[tuple[int, str], list[str]]:
        """Where the runs of the state left these jobs' videos when they ended, newest run first, by (job id, the
        take's SHA-256)."""
        out: dict[tuple[int, str], list[str]] = {}
        if self.schema < 4:
            return out
        for chunk, marks in _chunked(job_ids):
            for job_id, path, sha in self.db.execute(
                f"SELECT job_id, json_extract(final, '$.output_path'), json_extract(final, '$.sha256') FROM run_jobs"
                f" WHERE job_id IN ({marks}) AND final IS NOT NULL ORDER BY run_id DESC", chunk
            ):
                if path and sha:
                    paths = out.setdefault((job_id, str(sha)), [])
                    if path not in paths:
                        paths.append(str(path))
        return out

    def copies_of(self, job_id: int, sha256: str) -> list[str]:
        """The paths the state knows held this take of the job (its SHA-256) when it last said so: where a later
        render kept it when it replaced it (event `superseded`), then where each run left it when it ended, newest
        run first (an earlier `outputs_dir:`, a renamed sweep's folder). Where a done job whose file is missing is
        restored from at no cost (`resume.kept_copy`), each checked by its bytes first: a file there may have
        been edited or replaced since."""
        out = []
        kept = self._kept_takes([job_id]).get((job_id, sha256))
        if kept:
            out.append(kept)
        out.extend(p for p in self._takes_left([job_id]).get((job_id, sha256), ()) if p not in out)
        return out

    def _kept_takes(self, job_ids: Sequence[int]) -> dict[tuple[int, str], str]:
        """Where the earlier takes of these jobs were kept when later renders replaced them (events
        `superseded`), by (job id, the take's SHA-256)."""
        out: dict[tuple[int, str], str] = {}
        for chunk, marks in _chunked(job_ids):
            for job_id, detail in self.db.execute(
                f"SELECT job_id, detail FROM events WHERE kind='superseded' AND job_id IN ({marks}) ORDER BY id", chunk
            ):
                d = json.loads(detail) if detail else None
                if isinstance(d, dict) and d.get("path") and d.get("sha256"):
                    out[(job_id, str(d["sha256"]))] = str(d["path"])
        return out

    def _money_as_left(self, run_id: int, now: tuple[int, int]) -> tuple[int, int]:
        """An earlier run's (spent, reserved) as it left them; `now` for a run that ended before they were kept."""
        if self.schema < 5:
            return now
        row = self.db.execute("SELECT final_money FROM runs WHERE id=?", (run_id,)).fetchone()
        kept = json.loads(row[0]) if row is not None and row[0] else None
        if not isinstance(kept, dict):
            return now
        return int(kept.get("spent", now[0])), int(kept.get("reserved", now[1]))

    def _as_of(self, jobs: tuple[JobRecord, ...], moment: float) -> tuple[JobRecord, ...]:
        """The jobs of an earlier run as they were when it ended (its report, a comparison): each one's state,
        and the error of that state, from the last move it made by then. A later run may have moved them
        since (re-run, resumed, failed); their files are as they are now."""
        state_kinds = {s.value for s in JobState} | set(_BACK_TO_PLANNED) | {"reset-undone", "rerun-cancelled",
                                                                             "rerun-failed"}
        last: dict[int, tuple[str, str | None]] = {}
        for chunk, marks in _chunked([j.id for j in jobs]):
            q = f"SELECT job_id, kind, detail FROM events WHERE job_id IN ({marks}) AND at <= ? ORDER BY id"
            for row in self.db.execute(q, (*chunk, moment)):
                if row["kind"] in state_kinds:
                    detail = json.loads(row["detail"]) if row["detail"] else {}
                    detail = detail if isinstance(detail, dict) else {}
                    # a void or an undone reset may have put the job back as it was (done, say)
                    state = detail.get("restored") or _BACK_TO_PLANNED.get(row["kind"], row["kind"])
                    last[row["job_id"]] = (state, detail.get("error"))
        takes = self._takes_as_of([j.id for j in jobs], moment)
        out = []
        for job in jobs:
            state, error = last.get(job.id, (S.PLANNED.value, None))
            redone = job if (state, error) == (job.state, job.error) else dataclasses.replace(job, state=state, error=error)
            out.append(self._take_as_of(redone, state, takes.get(job.id), moment) if takes.get(job.id, (0,))[0]
                       != job.attempts else redone)
        return tuple(out)

    def _takes_as_of(self, job_ids: Sequence[int], moment: float) -> dict[int, tuple[Any, ...]]:
        """Each job's latest attempt begun by `moment`: (n, provider_id, billed_micros, started_at, ended_at)."""
        out: dict[int, tuple[Any, ...]] = {}
        for chunk, marks in _chunked(job_ids):
            for row in self.db.execute(
                f"SELECT job_id, n, provider_id, billed_micros, started_at, ended_at FROM attempts"
                f" WHERE job_id IN ({marks}) AND started_at <= ? ORDER BY n", (*chunk, moment)
            ):
                out[row[0]] = tuple(row)[1:]
        return out

    def _take_as_of(self, job: JobRecord, state: str, take: tuple[Any, ...] | None, moment: float) -> JobRecord:
        """`job` (its state and error as of `moment`) with the figures of the attempt it had then (`take`, None:
        none begun), where a later run has sent it since: that attempt's provider id, charge and times, not the
        later one's. A done job's video (its SHA-256, when it was fetched) from its `done` event by then."""
        if take is None:
            return dataclasses.replace(job, attempts=0, provider_id=None, cost_micros=None, cost_reported_micros=None,
                                       sha256=None, submitted_at=None, completed_at=None, downloaded_at=None)
        n, provider_id, billed, started, ended = take
        ended = ended if ended is not None and ended <= moment else None
        sha, fetched = None, None
        if state == S.DONE.value:
            row = self.db.execute("SELECT at, detail FROM events WHERE job_id=? AND kind='done' AND at <= ?"
                                  " ORDER BY id DESC LIMIT 1", (job.id, moment)).fetchone()
            if row is not None:
                detail = json.loads(row["detail"]) if row["detail"] else {}
                sha, fetched = (detail.get("sha256") if isinstance(detail, dict) else None), row["at"]
        return dataclasses.replace(job, attempts=n, provider_id=provider_id,
                                   cost_micros=billed if ended is not None else None, cost_reported_micros=None,
                                   sha256=sha, submitted_at=started, completed_at=ended, downloaded_at=fetched)

    def attempts(self, job_id: int) -> list[sqlite3.Row]:
        return self.db.execute(f"SELECT {self._cols('attempts')} FROM attempts WHERE job_id=? ORDER BY n", (job_id,)).fetchall()


def _set_aside(job: JobRecord) -> bool:
    """Whether the done job's video is recorded where a changed manifest set it aside (`resume._put_aside`):
    `<outputs>/.runs/superseded/<hash16>/<name>`, not a take folder of a re-render (`take_path`)."""
    if job.state != S.DONE.value or not job.output_path:
        return False
    # Most videos are where their manifest put them: told from the text alone, which holds every name of the path
    # (parsing it costs some 20 us a job, a good part of a finished run's report).
    if "superseded" not in job.output_path or job.hash[:16] not in job.output_path:
        return False
    where = Path(job.output_path).parent
    return where.name == job.hash[:16] and where.parent.name == "superseded" and where.parent.parent.name == ".runs"


def _chunked(values: Sequence[Any], size: int = 500) -> Iterator[tuple[list[Any], str]]:
    """`values` in chunks of `size`, each with its `?,?,...` placeholders (SQLite bounds a query's parameters)."""
    for i in range(0, len(values), size):
        chunk = list(values[i : i + size])
        yield chunk, ",".join("?" * len(chunk))


# Events that put a job back to planned without a move of its own.
_BACK_TO_PLANNED = {"voided": S.PLANNED.value, "abandoned": S.PLANNED.value}


# The statements of job moves (`Store.transition`) and of their attempts (`Store._sync_attempt`), by shape.
_JOB_UPDATES: dict[tuple[str, ...], str] = {}
_ATTEMPT_UPDATES: dict[tuple[tuple[str, ...], bool], str] = {}
# Columns `_sync_attempt` sets by an expression of its own (the value kept where there is one), not plainly.
_ATTEMPT_KEPT = frozenset({"billed_run_id", "endpoint", "simulator"})


def _event_detail(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    keep = {k: v for k, v in fields.items() if k in ("provider_id", "error", "sha256", "cost_micros")}
    return keep or None


def _as_keyed(run: RunRecord, jobs: tuple[JobRecord, ...], rows: Sequence[sqlite3.Row]) -> tuple[JobRecord, ...]:
    """The run's `jobs` with the sweep and values each had in the run: a job's row holds those of the latest run
    that had it, which may have moved it to another sweep, renamed its sweep or removed an axis (`as_keyed`)."""
    moved = [i for i, (job, row) in enumerate(zip(jobs, rows)) if job.key != row["key"]]
    if not moved:
        return jobs
    typed = typed_values(jobs)
    out = list(jobs)
    for i in moved:
        out[i] = as_keyed(jobs[i], rows[i]["key"], run.axes, typed)
    return tuple(out)


def _reused(memo: dict[int, tuple[tuple[Any, ...], JobRecord]], row: sqlite3.Row) -> JobRecord:
    values = tuple(row)
    hit = memo.get(row["id"])
    if hit is not None and hit[0] == values:
        return hit[1]
    record = job_record(row)
    memo[record.id] = (values, record)
    return record
