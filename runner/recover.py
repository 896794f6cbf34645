"""`gridrun recover`: rebuild a state lost, emptied or behind from what the output folder holds, paying nothing.

A state.db lost with no backup (a wiped disk, a tmpfs, a copy restored from before a later run, its write-ahead
log lost) leaves every finished video in the output folder, each with the sidecar its download wrote: the job's
hash, the provider and model, the render's id, its idempotency key and attempt, its costs and the video's SHA-256.
For each job of the plan, the video at its output path is adopted when that sidecar is gridrun's, names this very
job (its hash, provider and model) and the video's bytes still hash to what it records: the job is recorded done
with that take (event `recovered`), as a run of its own (status `recovered`) that sent nothing. Where its path holds
none, the latest take of the job found whole elsewhere in the folder is (`Takes`: kept aside under
`.runs/superseded/`, or where an earlier `output:` put it). A video edited or cut short, a sidecar of another job,
or of another state's render, is left as it is and said; and where all a refused state's takes found are left so,
no run is recorded, so that the refusal stays. A job sending a local input image not found is not checked: its
hash needs the image's digest; while one is, nothing is recorded (its video may be there, and a run recorded would
lift the refusal). Jobs the state
holds already are left as they are: on a whole state it only fills in the jobs it has no record of.

Made by this state: sent under one of its idempotency keys' own parts (`_own_salts`), of a state lost the part the
sidecars of the run the output folder's lock names carry, which the state rebuilt takes as its own. Run under the
runner lock and the output folder's lock, as a run is; the run, its takes and its end recorded in one transaction,
the output folder's lock then names the recover run, so that `plan` and `run` no longer refuse the state as lost
or behind: a recover that fails records nothing, and leaves the state refused. Nothing is sent to a provider,
and no file is moved, written over or removed but the state's and the run's manifest copy (`.runs/run-N.yaml`,
another text there kept first, as a run keeps it).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import NotRecordedError, StateError
from .jobs import Job, counted_cost
from .outputs import gridrun_sidecar, sha256_file, sidecar_path, superseded_dir
from .plan import Plan
from .state import KEYS_SALTED_AT, RECOVERED_RUN, JobState, Store

__all__ = ["OUTCOMES", "Found", "RecoverResult", "recover", "recover_json"]

# What recover found for each job of the plan, in the order a summary says them.
RECOVERED = "recovered"        # its video, whole, with its sidecar: recorded done (or would be, --dry-run)
RECORDED = "recorded"          # the state holds the job already: left as it is
NOT_FOUND = "not-found"        # no video at its path with a sidecar of gridrun's (never finished, or removed)
ALTERED = "altered"            # its sidecar is this job's, but the video's bytes are not those it records
ANOTHER = "another"            # the sidecar there is another job's, or another provider's, model's or state's
UNCHECKED = "not-checked"      # an input image of the job is not found: its hash, and so its video, unknown
OUTCOMES = (RECOVERED, RECORDED, NOT_FOUND, ALTERED, ANOTHER, UNCHECKED)

# The run status of a recover run (`records.RUN_STATUSES`).
RECOVER_STATUS = RECOVERED_RUN


@dataclass(frozen=True, slots=True)
class Found:
    """What recover found for one job of the plan."""

    key: str
    hash: str
    path: str                     # where its video was looked for: its output path, or where its take recovered is
    outcome: str                  # one of OUTCOMES
    why: str                      # in words: what was found there
    cost_micros: int              # the plan's estimate of the job: what a run would pay to send it
    recorded_cost_micros: int | None = None  # of a job recovered: what a run counts for its take (`_counted`)
    provider_id: str | None = None           # of a job recovered: the render its video is of
    sent_by: int | None = None               # the run its sidecar, of this job, says sent it (of the state lost)
    downloaded_at: float | None = None       # of a job recovered: when its video was saved, as its sidecar says
    takes_left: int = 0                      # takes of this job the output folder holds (sidecars naming its hash)
                                             # that were not adopted: edited, another state's, older than another
    salt: str | None = None                  # of a job recovered: the state's part of the key it was sent with
    older: int = 0                           # of a job altered: whole takes of it found elsewhere, older than
                                             # the one at its path, not adopted in its place
    newer: bool = False                      # of a job recovered: the state held it, with an earlier take
                                             # (a state behind: its record of the later run lost)


@dataclass(frozen=True, slots=True)
class RecoverResult:
    """What `recover` found, and what it recorded (nothing, with `dry_run`)."""

    manifest: str
    state: str                    # the state file
    outputs_dir: str
    dry_run: bool
    run_id: int | None            # the recover run recorded (None: dry run, or nothing to record)
    jobs: tuple[Found, ...]
    to_pay: tuple[str, ...]       # keys of the jobs a `gridrun run` would now send, and pay for
    to_pay_micros: int            # their estimates, as `plan` figures them
    refused: str | None = None    # what `plan` and `run` refused the state for before (lost, emptied, behind)
    # why the state's key part, which tells its takes from another state's, is not known for a state lost, in words,
    # with what to do; None when it is known, or nothing asks for it
    key_part_unknown: str | None = None
    # the run of this state folder the output folder's lock names that the state does not record (a state lost,
    # emptied or behind), which may have left jobs in flight at the provider; None: no such run
    lost_run: int | None = None
    # whether the lost run's key part is known (carried into the state: the jobs it left in flight are sent again
    # under the keys the provider knows, and collected, not paid again); False: not known, so `gridrun run` sends
    # them under new keys and pays for them again
    lost_keys_known: bool = True

    @property
    def in_flight_unknown(self) -> dict[str, Any] | None:
        """The jobs the lost run may have left in flight at the provider under keys nothing here tells, which
        `gridrun run` sends, and pays for, again (the jobs to pay, as none of them is known to be settled):
        `run`, `jobs`, `usd`; None when there is no lost run, its key part is known, or nothing is to pay."""
        if self.lost_run is None or self.lost_keys_known or not self.to_pay:
            return None
        return {"run": self.lost_run, "jobs": len(self.to_pay), "usd": self.to_pay_micros / 1e6}

    @property
    def takes_left(self) -> int:
        """Takes of the plan's jobs not recorded (their sidecars name the jobs' hashes): edited, another state's,
        an older take than the one at the job's path. While the state was refused and none was adopted, recover
        records nothing, and the refusal stays: recording a run would lift it, and the next run pay again for
        videos the output folder holds."""
        return sum(f.takes_left for f in self.jobs if f.outcome not in (RECOVERED, RECORDED))

    @property
    def unchecked(self) -> str | None:
        """Why nothing is recorded while a job is not checked (an input image of it not found: its video, which the
        output folder may hold, unknown), in words; None when every job was checked. A run recorded would lift the
        refusal of a state lost, and, the image put back, the next run pay again for that job's video."""
        n = sum(1 for f in self.jobs if f.outcome == UNCHECKED)
        if not n:
            return None
        jobs = f"{n:,} job{'s' if n != 1 else ''}"
        return (f"{jobs} not checked (an input image not found): put the image back, or remove the "
                f"job{'s' if n != 1 else ''} from the manifest, and recover again")

    def counts(self) -> dict[str, int]:
        return {o: sum(1 for f in self.jobs if f.outcome == o) for o in OUTCOMES}

    @property
    def recovered_micros(self) -> int:
        """What a run would have paid again for the jobs recovered: what their takes count (`_counted`: the
        provider's bill their sidecars record, as a run counts it, which for a job a capabilities file of the
        manifest prices lower may be gridrun's own price), else their estimates, as `plan` figures them. A job the
        state held, recovered with a later take (`newer`), counts in none of it: a run would pay nothing for it
        either, putting back the older take the state holds (`newer_takes`)."""
        return sum(f.cost_micros if f.recorded_cost_micros is None else f.recorded_cost_micros
                   for f in self.jobs if f.outcome == RECOVERED and not f.newer)

    @property
    def newer_takes(self) -> int:
        """Jobs the state held, recovered with a later take than the one it holds (a state behind): kept, where a
        run would have moved them aside for the older takes, paying for nothing either way."""
        return sum(1 for f in self.jobs if f.outcome == RECOVERED and f.newer)

    @property
    def recorded_cost_micros(self) -> int:
        """What the jobs recovered cost when they were rendered, as their sidecars record it."""
        return sum(f.recorded_cost_micros or 0 for f in self.jobs if f.outcome == RECOVERED)


# The figures a sidecar of gridrun's holds within reason: an attempt's number (a positive SQLite integer, well below
# its limit), a dollar figure (in micro-USD: a billion dollars), a moment (seconds since the epoch: up to the year
# 5138). A figure beyond them was not written by a download (an edit by hand, a damaged file): its take is not
# adopted, and the job said so.
MAX_ATTEMPT = 1 << 31
MAX_MICROS = 10**15
MAX_TIME = 1e11
TIMES = ("submitted_at", "completed_at", "downloaded_at")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _micros(value: Any) -> int | None:
    """A sidecar's dollar figure in micro-USD; None when it holds none, or one out of range (`_out_of_range`)."""
    if not _number(value) or not math.isfinite(value) or not 0 <= value <= MAX_MICROS / 1_000_000:
        return None
    return round(value * 1_000_000)


def _counted(doc: Mapping[str, Any], p: Plan, job: Job) -> int:
    """What a run of `p` counts for the take the sidecar `doc` records of `job` (`counted_cost` of the provider's
    figure it holds, `cost_reported_usd`, against the job's estimate and gridrun's own price where a capabilities
    file of the manifest prices it lower, `Plan.lowered`): that figure, or the estimate where it holds none or one
    a run doubts. Its `cost_usd`, what the run that wrote it counted, is not taken as is: a sidecar is a file of the
    output folder, and a figure written there (999,999.99) would count as spent."""
    estimate = job.cost_micros
    billed, _ = counted_cost(estimate, _micros(doc.get("cost_reported_usd")), completed=True,
                             own=p.lowered.get(job.hash))
    return estimate if billed is None else billed


def _out_of_range(doc: Mapping[str, Any]) -> str | None:
    """The first figure of the sidecar `doc` that no download writes (`MAX_ATTEMPT`, `MAX_MICROS`, `MAX_TIME`: not
    finite, negative, or beyond them), in words; None when each it holds is within range (one it does not hold, or
    holds as no number, is left out as before)."""
    n = doc.get("attempt")
    if _number(n) and not (isinstance(n, int) and 0 < n < MAX_ATTEMPT):
        return f"its sidecar's attempt ({n!r}) is out of range"
    for name in ("cost_usd", "cost_reported_usd"):
        v = doc.get(name)
        if _number(v) and (not math.isfinite(v) or not 0 <= v <= MAX_MICROS / 1_000_000):
            return f"its sidecar's {name} ({v!r}) is out of range"
    for name in TIMES:
        v = doc.get(name)
        if _number(v) and (not math.isfinite(v) or not 0 <= v <= MAX_TIME):
            return f"its sidecar's {name} ({v!r}) is out of range"
    return None


def _salt_of(key: Any, job_hash: str) -> str | None:
    """The state's part (`key_salt`) of the idempotency key `key` that a job of hash `job_hash` was sent with
    (`state.idempotency_key`: gridrun-<hash[:24]>-<salt>-<attempt>); None for a key of another shape."""
    if not isinstance(key, str):
        return None
    head = f"gridrun-{job_hash[:24]}-"
    if not key.startswith(head):
        return None
    salt, _, attempt = key[len(head):].rpartition("-")
    return salt if salt and attempt.isdecimal() else None


def _age(path: Path) -> tuple[int, float]:
    """How late the take whose sidecar is beside `path` is: its attempt, then when it was saved, as the sidecar says
    (0 for a figure it does not hold)."""
    doc = gridrun_sidecar(path) or {}
    n, saved = doc.get("attempt"), doc.get("downloaded_at")
    return (n if isinstance(n, int) and _number(n) and 0 < n < 1 << 62 else 0,
            float(saved) if _number(saved) and math.isfinite(saved) else 0.0)


class Takes:
    """The videos of the output folder whose sidecars of gridrun's name a job of the plan, by the job's hash: a
    take a run kept aside under `.runs/superseded/`, or a video the job wrote at another path (the manifest's
    `output:` changed since). Read once, on the first job whose path holds no video to adopt: one walk of the
    folder, `.runs/` skipped but its `superseded/`."""

    SIDE = frozenset({".json", ".jpg", ".part", ".take", ".tmp"})

    def __init__(self, p: Plan) -> None:
        self.p = p
        self._by_hash: dict[str, list[Path]] | None = None

    def of(self, job: Job) -> list[Path]:
        """The videos found of the job, but at its own output path."""
        if self._by_hash is None:
            self._by_hash = self._walk()
        own = os.path.abspath(job.output)
        out = []
        for sidecar in self._by_hash.get(job.hash, ()):
            stem = sidecar[:-len(".json")]
            video = stem + job.output.suffix
            if not os.path.isfile(video):  # written under another extension (`output:` changed it)
                video = next((v for v in sorted(glob.glob(glob.escape(stem) + ".*"))
                              if os.path.splitext(v)[1].lower() not in self.SIDE and os.path.isfile(v)), video)
            if os.path.abspath(video) != own:
                out.append(Path(video))
        return out

    def _walk(self) -> dict[str, list[Path]]:
        wanted = {job.hash for job in self.p.jobs}
        found: dict[str, list[Path]] = {}
        top = os.path.abspath(self.p.outputs_dir)
        for root in (top, str(superseded_dir(top))):
            for folder, dirs, files in os.walk(root):
                if folder == top:
                    dirs[:] = [d for d in dirs if d != ".runs"]
                dirs.sort()
                for name in sorted(files):
                    if not name.endswith(".json"):
                        continue
                    path = os.path.join(folder, name)
                    try:
                        if os.path.getsize(path) > 1 << 20:  # no sidecar is that long
                            continue
                        with open(path, "rb") as f:
                            doc = json.loads(f.read().decode("utf-8"))
                    except (OSError, ValueError):
                        continue
                    h = doc.get("hash") if isinstance(doc, dict) else None
                    if isinstance(h, str) and h in wanted:
                        found.setdefault(h, []).append(path)
        return found


def _look(p: Plan, job: Job, *, salt: Own, renders: frozenset[str], foreign_lock: str | None,
          takes: Takes | None = None) -> Found:
    """What the job's output path holds: its video, whole, beside a sidecar of gridrun's of this very job made
    by this state (RECOVERED), or why not (`_look_at`). Where it does not, a take of the job found elsewhere in
    the output folder (`Takes`: one a run kept aside under `.runs/superseded/<hash16>/`, an earlier take a
    re-render replaced or a video moved out of another's way; one at the path an earlier `output:` gave the job)
    is adopted there instead, the latest: a later run copies it to the job's path, nothing paid. A take at the
    job's path that is this job's but altered (edited by hand) wins over an older one found elsewhere: it is said
    as altered, the older take not adopted in its place."""
    here = _look_at(p, job, job.output, salt=salt, renders=renders, foreign_lock=foreign_lock)
    if here.outcome == RECOVERED:
        return here
    doc = gridrun_sidecar(job.output)
    left = 1 if doc is not None and doc["hash"] == job.hash else 0
    places = takes.of(job) if takes is not None else sorted(
        (superseded_dir(p.outputs_dir) / job.hash[:16]).glob(f"*/{glob.escape(job.output.name)}"))
    kept, older = [], []
    least = _age(job.output) if here.outcome == ALTERED else None
    for place in places:
        f = _look_at(p, job, place, salt=salt, renders=renders, foreign_lock=foreign_lock)
        if f.outcome != RECOVERED:
            left += 1
            continue
        age = _age(place)
        if least is not None and age < least:  # older than the (edited) take at the job's path
            older.append(age[0])
            left += 1
            continue
        kept.append((age, f.downloaded_at or 0.0, str(place), f))
    if not kept:
        if older:
            attempts = ", ".join(str(n) for n in sorted(set(older)) if n) or "unknown"
            return replace(here, takes_left=left, older=len(older), why=(
                f"{here.why} at its path; {len(older)} older take{'s' if len(older) != 1 else ''} of the job (attempt "
                f"{attempts}) found elsewhere not adopted in its place"))
        return replace(here, takes_left=left)
    f = max(kept)[3]
    aside = Path(os.path.abspath(f.path)).is_relative_to(os.path.abspath(superseded_dir(p.outputs_dir)))
    where = "kept under .runs/superseded/" if aside else \
        f"at {os.path.relpath(f.path, p.outputs_dir)} (where an earlier `output:` put it)"
    return replace(f, takes_left=left, why=f"{here.why} at its path; its take {where} adopted there (a run "
                                           "copies it to the job's path, nothing paid)")


def _look_at(p: Plan, job: Job, path: Path, *, salt: Own, renders: frozenset[str],
             foreign_lock: str | None) -> Found:
    """What `path` holds for the job (`_look`)."""

    def found(outcome: str, why: str, **more: Any) -> Found:
        return Found(job.key, job.hash, str(path), outcome, why, job.cost_micros, **more)

    doc = gridrun_sidecar(path)
    if doc is None:
        there = path.is_file()
        return found(NOT_FOUND, "a video with no sidecar of gridrun's" if there else "no video there")
    if doc["hash"] != job.hash:
        return found(ANOTHER, f"the sidecar there is another job's ({doc['key']!r})")
    if doc.get("provider") != p.provider or doc.get("model") != p.model:
        return found(ANOTHER, f"the sidecar there is of another provider or model ({doc.get('provider')}, "
                              f"{doc.get('model')})")
    provider_id = doc.get("provider_id")
    if not isinstance(provider_id, str) or not provider_id:
        return found(ANOTHER, "the sidecar there names no render")
    if provider_id not in renders:
        if foreign_lock is not None:
            return found(ANOTHER, f"made by another state's run (the output folder's lock names {foreign_lock})")
        theirs = _salt_of(doc.get("idempotency_key"), job.hash)
        if theirs not in salt.salts:
            return found(ANOTHER, f"made by another state's run ({salt.said(theirs)})")
    wrong = _out_of_range(doc)
    if wrong is not None:
        return found(ALTERED, f"{wrong}: a sidecar edited or damaged, its take not adopted")
    if not path.exists():
        return found(NOT_FOUND, "its sidecar alone, no video there")
    try:
        whole = path.is_file() and sha256_file(path) == doc["sha256"]
    except OSError as exc:
        return found(ALTERED, f"the video cannot be read: {exc.strerror or exc}")
    sent_by = doc.get("run_id") if isinstance(doc.get("run_id"), int) and not isinstance(doc.get("run_id"), bool) \
        else None
    if not whole:
        return found(ALTERED, "the video is not the one its sidecar records (edited, cut short or replaced)",
                     sent_by=sent_by)
    saved = doc.get("downloaded_at")
    return found(RECOVERED, "its video, whole, with its sidecar", recorded_cost_micros=_counted(doc, p, job),
                 provider_id=provider_id, sent_by=sent_by, salt=theirs if provider_id not in renders else None,
                 downloaded_at=float(saved) if _number(saved) else None)


def _refused(p: Plan) -> str | None:
    """What `plan` and `run` refuse the manifest's state for now (lost, emptied, behind, damaged), as they say it;
    None when they do not."""
    path = p.state_dir / "state.db"
    try:
        store = Store(path, readonly=True, outputs_dir=p.outputs_dir)
    except NotRecordedError:
        return None
    except StateError as exc:
        return str(exc)
    store.close()
    return None


def _readable(path: Path) -> bool:
    """The state file holds a state to read: there, not empty, more than SQLite's header alone."""
    from .state import _holds_no_state

    try:
        return path.stat().st_size > 0 and not _holds_no_state(path)
    except OSError:
        return False


def _records(store: Store | None, hashes: Sequence[str]) -> dict[str, Any]:
    """Of `hashes`, the jobs the state holds that a recover leaves as they are: any with a record, but a job
    planned that was never sent (no attempt), which a recover may record done."""
    if store is None:
        return {}
    rows = store.jobs_by_hash(list(hashes))
    out = {}
    for h, row in rows.items():
        if row["state"] == JobState.PLANNED.value and not store.attempts(int(row["id"])):
            continue
        out[h] = row
    return out


@dataclass(frozen=True, slots=True)
class Own:
    """The state's parts of the idempotency keys (`key_salt`) that make a take found in the output folder this
    state's own (`_own_salts`); `why`, in words, how they are known, or why none is."""

    salts: frozenset[str | None]
    why: str

    def said(self, theirs: str | None) -> str:
        """Why a take sent under the key part `theirs` is not this state's, in words."""
        sent = f"sent under the key part {theirs!r}" if theirs else "sent under a key with no state's part"
        if not self.salts:
            return f"{sent}; {self.why}"
        ours = ", ".join(sorted(repr(s) for s in self.salts if s is not None)) or "none"
        return f"{sent}, not this state's, {ours}: {self.why}"


def _own_salts(p: Plan, store: Store | None, takes: Takes | None = None, key_part: str | None = None) -> Own:
    """The idempotency key parts of this state: its `key_salt` where it records a run; those of the takes a recover
    recorded (attempts of no run of its own); and, for runs of this state folder it does not record (a state lost,
    emptied or behind), the part of the keys of the sidecars the run the output folder's lock names wrote
    (`_lock_salts`). A take sent under any other (a teammate's render brought by `git pull`, another checkout's)
    is another state's: recover adopts it no more than a run whose state is whole caches it. `key_part`: the part
    the user names as this state's (`--key-part`), where nothing here tells it (`_lock_salts`)."""
    salts: set[str | None] = set()
    how = []
    if key_part is not None:
        salts.add(key_part)
        how.append("the one `--key-part` names")
    if store is not None and store.schema >= KEYS_SALTED_AT and store.records_runs():
        salts.add(store.key_salt())
        salts.update(s for s in (_salt_of(key, h) for h, key in store.unsent_keys()) if s is not None)
        how.append("the state's own")
    ran, why = _lock_salts(p, store, takes)
    salts.update(ran)
    if ran:
        how.append(why)
    return Own(frozenset(salts), "; ".join(how) if salts else why)


def _lock_salts(p: Plan, store: Store | None,
                takes: Takes | None = None) -> tuple[frozenset[str | None], str]:
    """The key part of this state folder's lost state: where the output folder's lock names a run of this state
    folder the state does not record, the part the lock records (`key_part_value`, its digest matching); of a lock
    that records none (an older gridrun's), the part of the sidecars, of this plan's jobs, whose digest the lock records
    (`key_part`, written by each run that takes it); for a lock written before it recorded one, the part of the
    sidecars that run wrote (of that run, `run_id`, saved since it took the lock, `started`), when they share one.
    Sidecars saved before that run are no evidence (a teammate's renders brought by `git pull` may be there). Nothing
    when the lock names no run of this state folder, another checkout's (`_foreign_lock`), or one the state records,
    the salt then the state's own; with why, in words."""
    from .state import key_part_digest

    writer = _writer(p)
    run = _lock_run(p)
    if writer is None or run is None or _foreign_lock(p) is not None:
        return frozenset(), ("the output folder's lock names no run of this state folder: nothing tells this "
                             "state's renders from another's (a copy, a clone, a teammate's)")
    then = Path(writer.get("outputs_then", p.outputs_dir))  # where its runs recorded it, before a move
    if store is not None and (store.records_run(run, p.outputs_dir) or store.records_run(run, then)):
        return frozenset(), "the state records the run the output folder's lock names"
    try:
        started = float(writer.get("started", ""))
    except ValueError:
        started = math.inf
    digest = writer.get("key_part") or None
    value = writer.get("key_part_value") or None
    if value is not None and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value) \
            and (digest is None or key_part_digest(value) == digest):
        return frozenset({value}), f"the one the output folder's lock, of run {run}, records"
    ran: dict[str | None, list[str]] = {}
    seen: dict[str, list[str]] = {}  # every key part the sidecars of the plan's jobs carry, with their files
    for job in p.jobs:
        places = [job.output, *(takes.of(job) if takes is not None else (superseded_dir(p.outputs_dir) / job.hash[:16])
                                .glob(f"*/{glob.escape(job.output.name)}"))]
        for place in places:
            doc = gridrun_sidecar(place)
            if doc is None or doc["hash"] != job.hash:
                continue
            salt = _salt_of(doc.get("idempotency_key"), job.hash)
            if salt is not None:
                seen.setdefault(salt, []).append(os.path.relpath(sidecar_path(place), p.outputs_dir))
            if digest is not None:
                if salt is not None and key_part_digest(salt) == digest:
                    return frozenset({salt}), (f"the one the output folder's lock, of run {run}, names, which the "
                                               "sidecars here sent under it carry")
                continue
            by, saved = doc.get("run_id"), doc.get("downloaded_at")
            if not isinstance(by, int) or isinstance(by, bool) or not _number(saved) or not math.isfinite(saved):
                continue
            if by == run and saved >= started:
                ran.setdefault(salt, []).append(os.path.relpath(sidecar_path(place), p.outputs_dir))
    if digest is not None:
        return frozenset(), (f"no sidecar here was sent under the key part the output folder's lock, of run {run}, "
                             "names")
    if len(ran) == 1:
        return frozenset(ran), f"that of the sidecars run {run}, which the output folder's lock names, wrote"
    if ran:
        each = "; ".join(f"{s!r} by {_some_files(files)}" for s, files in sorted(ran.items(), key=lambda i: str(i[0])))
        return frozenset(), (f"the sidecars of run {run}, which the output folder's lock names, were sent under "
                             f"{len(ran)} key parts ({each}): which is this state's is not known; move aside "
                             "the files of the key part that is not (a teammate's, a copy's) and recover again")
    parts = "; ".join(f"{s!r} by {_some_files(files)}" for s, files in sorted(seen.items()))
    return frozenset(), (
        f"run {run}, which the output folder's lock names, wrote no video here (each of its jobs cached, or none "
        "finished), and the lock, written by a gridrun before locks recorded a digest of the state's key part, holds "
        "none: sidecars saved before that run are no evidence of this state's key part (a teammate's renders "
        "brought by `git pull` carry run numbers and times alike), so no take here is taken for this state's. "
        "Restore state.db from a backup; or, knowing the videos here are this state's own, name the key part their "
        f"sidecars carry: `gridrun recover {p.manifest.path} --key-part PART`"
        + (f" (the sidecars here carry {parts})" if parts else " (no sidecar here carries one)"))


def _some_files(files: Sequence[str]) -> str:
    """A few of `files`, and how many more."""
    shown = ", ".join(sorted(files)[:3])
    return shown + (f" and {len(files) - 3:,} more" if len(files) > 3 else "")


def _writer(p: Plan) -> dict[str, str] | None:
    """The output folder's lock record, its paths where they are now where it is this state folder's, moved since
    (`state.lock_of_state`)."""
    from .state import lock_of_state, outputs_writer

    writer = outputs_writer(p.outputs_dir)
    return lock_of_state(writer, p.outputs_dir, p.state_dir.resolve()) or writer


def _foreign_lock(p: Plan) -> str | None:
    """The other state folder the output folder's lock names as the last to write it, or the other checkout's
    whose lock came with a clone (git tracks it, or another machine wrote it for a state folder never made here:
    `state._from_a_clone`); None when it names this manifest's, or there is none."""
    from .state import _from_a_clone, lock_of_state, outputs_writer

    writer = outputs_writer(p.outputs_dir)
    if writer is None:
        return None
    if lock_of_state(writer, p.outputs_dir, p.state_dir.resolve()) is None:
        return writer["state_dir"]
    clone = _from_a_clone(p.outputs_dir / ".runs" / "lock", p.state_dir)
    return None if clone is None else f"{writer['state_dir']} of another checkout: {clone}"


def _lock_run(p: Plan) -> int | None:
    """The run of this manifest's state folder the output folder's lock names as the last to write it; None when
    it names none, or another state folder's."""
    from .state import lock_of_state, outputs_writer

    writer = lock_of_state(outputs_writer(p.outputs_dir), p.outputs_dir, p.state_dir.resolve())
    if writer is None:
        return None
    ran = writer.get("run", "")
    return int(ran) if ran.isdecimal() and len(ran) <= 18 else None


def _above_lost(p: Plan, found: Sequence[Found], lock_run: int | None) -> int | None:
    """The lowest id the recover run may have: above the runs of the state lost that the output folder names (its
    lock's, and those whose sidecars found here of this plan's jobs name), and those the locks of the output folders
    beside it name of this state folder (`_sibling_runs`: other manifests sharing the state, outputs/<name> each),
    so that their numbers stay theirs: the runs' manifest copies (`.runs/run-N.yaml`) stay those of the runs the
    sidecars beside the videos name, another manifest's lost run is not taken for this recover, and a later run's
    numbers follow on. None: no such run."""
    runs = [r for r in (lock_run, *_sibling_runs(p), *(f.sent_by for f in found if f.outcome in (RECOVERED, ALTERED)))
            if r is not None and 0 < r < 1 << 62]
    return max(runs) + 1 if runs else None


def _sibling_runs(p: Plan) -> list[int]:
    """The runs of this manifest's state folder that the locks of the output folders beside its own name (a folder
    each, outputs/<name>, for the manifests sharing the state by default)."""
    from .state import lock_of_state, outputs_writer

    runs = []
    try:
        folders = [f for f in p.outputs_dir.parent.iterdir() if f.is_dir() and f != p.outputs_dir]
    except OSError:
        return []
    for folder in folders[:1000]:
        writer = outputs_writer(folder)
        ran = writer.get("run", "") if writer is not None else ""
        if writer is not None and ran.isdecimal() and len(ran) <= 18 \
                and lock_of_state(writer, folder, p.state_dir.resolve()) is not None:
            runs.append(int(ran))
    return runs


def survey(p: Plan, store: Store | None, takes: Takes,
           key_part: str | None = None) -> tuple[tuple[Found, ...], dict[str, Any], Own]:
    """What the output folder holds of each job of `p`, given the state `store` (None: none to read) and the takes
    found in the folder (`takes`, walked once for the whole recover), and the jobs the state holds already (hash ->
    row), and the state's key parts (`_own_salts`; `key_part`, the one `--key-part` names)."""
    rows = _records(store, [j.hash for j in p.jobs])
    salt = _own_salts(p, store, takes, key_part)
    foreign = _foreign_lock(p)
    out = []
    for job in p.jobs:
        row = rows.get(job.hash)
        if row is not None:
            later = _later_take(p, job, row, store, salt, foreign) if store is not None else None
            out.append(later or Found(job.key, job.hash, job.output_str, RECORDED,
                                      f"the state holds it ({row['state']})", job.cost_micros))
            continue
        unread = p.images_unread.get(job.hash)
        if unread is not None:  # planned without the image: a hash of no render, nothing to compare
            out.append(Found(job.key, job.hash, job.output_str, UNCHECKED,
                             f"its input image {unread} is not found: put it back and recover again",
                             job.cost_micros))
            continue
        renders = store.renders(job.hash) if store is not None else frozenset()
        out.append(_look(p, job, salt=salt, renders=renders, foreign_lock=foreign, takes=takes))
    return tuple(out), rows, salt


def _later_take(p: Plan, job: Job, row: Any, store: Store, salt: Own, foreign: str | None) -> Found | None:
    """The take at the job's path, where it is a later one than the state holds of the job (a state behind: state.db
    restored from a backup taken before a run, or its log lost): whole with its sidecar, sent under this state's
    key part, of a render the state has no record of, of an attempt above every one it records, the job settled in
    the state (none of its attempts in flight). Adopted, the run that made it is no longer taken for another's
    edit, nor its video moved aside for the older take. None where it is not."""
    from .state import IN_FLIGHT

    if row["state"] in {s.value for s in IN_FLIGHT}:
        return None
    doc = gridrun_sidecar(job.output)  # read first: the video is hashed only for a take the state does not know
    renders = store.renders(job.hash)
    if doc is None or doc["hash"] != job.hash or doc.get("provider_id") in renders:
        return None
    n = doc.get("attempt")
    known = max([int(a["n"]) for a in store.attempts(int(row["id"]))] or [0])
    if not isinstance(n, int) or isinstance(n, bool) or n <= known:
        return None
    f = _look_at(p, job, job.output, salt=salt, renders=renders, foreign_lock=foreign)
    if f.outcome != RECOVERED:
        return None
    by = f" by run {f.sent_by}" if f.sent_by is not None else ""
    return replace(f, newer=True, why=f"a later take (attempt {n}, made{by}) than the one the state holds, whole with "
                                      "its sidecar: the state's record of it was lost")


def _to_pay(p: Plan, found: Sequence[Found], rows: Mapping[str, Any]) -> tuple[tuple[str, ...], int]:
    """The jobs a `gridrun run` would send after the recover, and pay for: those neither recovered nor held by the
    state (a job it holds done is cached, one in flight followed, one settled left for `retry`), nor unchecked (its
    input image not found: a run refuses the manifest until it is back), with their estimates."""
    keys, micros = [], 0
    for job, f in zip(p.jobs, found):
        if f.outcome in (RECOVERED, UNCHECKED):  # one unchecked cannot be sent until its image is back
            continue
        row = rows.get(job.hash)
        if row is not None and row["state"] != JobState.PLANNED.value:
            continue
        keys.append(job.key)
        micros += job.cost_micros
    return tuple(keys), micros


def recover(p: Plan, *, dry_run: bool = False, argv: Sequence[str] = (), key_part: str | None = None) -> RecoverResult:
    """Record as done each job of `p` whose finished video its output folder holds (`survey`), as a run of status
    `recovered` that sends nothing; `dry_run`: say the same, writing nothing. A state that nothing is to be
    recovered into and that `plan` does not refuse is left as it is. `key_part`: the key part the user names as
    this state's, where the output folder's lock does not tell it (`_check_key_part`).

    :raises StateError: the state cannot be opened (damaged, another program's) or written.
    :raises LockError: another runner holds the state, or another state's run the output folder.
    :raises UsageError: `key_part` is none this state may take (`_check_key_part`).
    """
    from .plan import check_writable
    from .resume import (
        _manifest_text,
        _write_manifest_copy,
        check_files_writable,
        check_state_linked,
        lock_outputs,
    )

    path = p.state_dir / "state.db"
    refused = _refused(p)
    reading: Store | None = None
    if _readable(path):
        reading = Store(path, readonly=True, recovering=True)
    takes = Takes(p)
    try:
        if key_part is not None:
            _check_key_part(p, reading, takes, key_part)
        found, rows, own = survey(p, reading, takes, key_part)
        # a state lost whose output folder's lock names a run of its folder, and nothing tells its key part
        lock_run = _lock_run(p)
        lost_run = lock_run if lock_run is not None and _foreign_lock(p) is None \
            and (reading is None or not reading.records_run(lock_run, p.outputs_dir)) else None
        unknown = own.why if not own.salts and lost_run is not None and any(f.outcome == ANOTHER for f in found) \
            else None
    finally:
        if reading is not None:
            reading.close()
    to_pay, to_pay_micros = _to_pay(p, found, rows)

    def result(run_id: int | None) -> RecoverResult:
        return RecoverResult(manifest=str(p.manifest.path), state=str(path), outputs_dir=str(p.outputs_dir),
                             dry_run=dry_run, run_id=run_id, jobs=found, to_pay=to_pay,
                             to_pay_micros=to_pay_micros, refused=refused, key_part_unknown=unknown,
                             lost_run=lost_run, lost_keys_known=bool(own.salts))

    adopt = [(job, f) for job, f in zip(p.jobs, found) if f.outcome == RECOVERED]
    if dry_run or result(None).unchecked or (not adopt and (refused is None or result(None).takes_left)):
        # a job not checked (its input image not found) may have its video in the folder: a run recorded would
        # lift the refusal, and, the image back, the next run pay again for it
        # a refused state whose jobs' takes were all left (edited, another state's) stays refused: a run recorded
        # would lift the refusal, and the next run pay again for videos the output folder holds
        return result(None)
    check_writable(p, then="recover")
    check_files_writable(p, then="recover")
    check_state_linked(p)
    lock_run = _lock_run(p)  # before this run's lock record replaces it
    store = Store(path, outputs_dir=p.outputs_dir, then="recover", recovering=True)
    try:
        store.acquire_lock(then="run `gridrun recover` again", manifest=p.manifest.path, name=p.manifest.name)
        # The output folder's lock taken, its record left naming the run it names until the recover is recorded:
        # a recover that fails, is stopped or killed before its end leaves the state refused as it was.
        lock_outputs(p, store, write=False)
        # what the state holds now, under the lock: a run since the survey may have recorded some of the jobs
        held = _records(store, [job.hash for job, _ in adopt])
        # the lost state's key part, carried into this one where it has sent nothing under its own (`adopt_salt`)
        salts = {f.salt for _, f in adopt if f.salt is not None} or set(_lock_salts(p, store, takes)[0]) \
            or ({key_part} if key_part is not None else set())
        text = _manifest_text(p.manifest)
        with store.batch():  # the run, its takes and its end in one transaction: all recorded, or none
            run_id = store.start_run(
                manifest_name=p.manifest.name, manifest_path=str(p.manifest.path), manifest_copy=text,
                outputs_dir=str(p.outputs_dir), provider=p.provider, model=p.model, axes=p.axes,
                budget_micros=None, argv=argv, jobs=[j.record(p.image_digests) for j in p.jobs
                                                    if j.hash not in p.images_unread],
                least_id=_above_lost(p, found, lock_run), note_outputs=False,
            )
            carried = None
            if len(salts) == 1 and None not in salts and store.adopt_salt(str(next(iter(salts)))):
                carried = str(next(iter(salts)))
            # a job held: recorded again only with a later take than the one it holds, still unknown to it
            store.record_recovered(run_id, _takes(p, store, [
                (job, f) for job, f in adopt
                if job.hash not in held or f.newer and f.provider_id not in store.renders(job.hash)]))
            if carried is not None:
                store.skip_attempts(run_id, _attempts_sent(p, store, carried, takes))
            # takes billed at gridrun's own price: the jobs not sent that a file prices lower weigh it
            store.raise_estimates(p.lowered)
            store.end_run(run_id, RECOVER_STATUS)
        store._note_outputs_run(run_id)  # committed: the lock now names it
        try:
            _write_manifest_copy(p, run_id, text)
        except OSError:  # the state keeps the manifest too
            pass
    finally:
        store.release_lock()
        store.close()
    return result(run_id)


def _check_key_part(p: Plan, store: Store | None, takes: Takes, key_part: str) -> None:
    """Refuse `--key-part` where it cannot be this state's: the state records runs of its own (its key part is its
    own), the output folder's lock records the digest of another part, or no sidecar here of the plan's jobs
    carries it (a part mistyped).

    :raises UsageError: it cannot.
    """
    from .errors import UsageError
    from .state import key_part_digest, lock_of_state, outputs_writer

    if store is not None and store.schema >= KEYS_SALTED_AT and store.records_runs():
        raise UsageError(f"--key-part: the state {p.state_dir / 'state.db'} records runs of its own, and sends "
                         "under its own key part: it takes none other")
    writer = lock_of_state(outputs_writer(p.outputs_dir), p.outputs_dir, p.state_dir.resolve())
    digest = writer.get("key_part") if writer is not None else None
    if digest and key_part_digest(key_part) != digest:
        raise UsageError(f"--key-part: {key_part!r} is not the key part of this state folder's runs, whose digest "
                         f"{p.outputs_dir / '.runs' / 'lock'} records: recover without --key-part")
    for job in p.jobs:
        for place in (job.output, *takes.of(job)):
            doc = gridrun_sidecar(place)
            if doc is not None and doc["hash"] == job.hash and _salt_of(doc.get("idempotency_key"), job.hash) == key_part:
                return
    raise UsageError(f"--key-part: no sidecar in {p.outputs_dir} of this manifest's jobs was sent under the key part "
                     f"{key_part!r}")


def _attempts_sent(p: Plan, store: Store, salt: str, takes: Takes) -> dict[int, int]:
    """Job id -> the highest attempt of each job of the plan the state holds that the output folder's sidecars show
    sent under the key part `salt` (at its path, kept under `.runs/superseded/`, elsewhere): the lost state's, now
    this one's, whose keys up to it the provider has answered already."""
    seen: dict[int, int] = {}
    for job in p.jobs:
        job_id = store.job_ids.get(job.hash)
        if job_id is None:
            continue
        for place in (job.output, *takes.of(job)):
            doc = gridrun_sidecar(place)
            key = doc.get("idempotency_key") if doc is not None and doc["hash"] == job.hash else None
            if _salt_of(key, job.hash) != salt:
                continue
            n = int(str(key).rpartition("-")[2])
            if 0 < n < MAX_ATTEMPT:
                seen[job_id] = max(seen.get(job_id, 0), n)
    return seen


def _takes(p: Plan, store: Store, adopt: Sequence[tuple[Job, Found]]) -> list[dict[str, Any]]:
    """What `Store.record_recovered` records of each job of `adopt`: the take its sidecar names, read again
    under the lock (a sidecar gone since the survey is left out)."""
    takes = []
    for job, f in adopt:
        doc = gridrun_sidecar(Path(f.path))
        if doc is None or doc["hash"] != job.hash or doc["provider_id"] != f.provider_id or _out_of_range(doc):
            continue
        n = doc.get("attempt")
        takes.append({
            "job_id": store.job_ids[job.hash], "hash": job.hash,
            "n": n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1,
            "idempotency_key": doc.get("idempotency_key"), "provider_id": f.provider_id, "sha256": doc["sha256"],
            "estimate_micros": job.cost_micros, "cost_micros": _counted(doc, p, job),
            "cost_reported_micros": _micros(doc.get("cost_reported_usd")), "output_path": f.path,
            **{t: doc.get(t) if _number(doc.get(t)) else None for t in TIMES},
            "run_id": doc.get("run_id") if isinstance(doc.get("run_id"), int) else None,
            # a simulator's take, made where this plan sends: cached only for runs there
            **({"endpoint": p.endpoint[0] or None, "simulator": True} if p.provider == "sim" else {}),
        })
    return takes


def recover_json(r: RecoverResult) -> dict[str, Any]:
    """`gridrun recover --json`'s object (reports/EXPORTS.md)."""
    return {
        "manifest": r.manifest,
        "state": r.state,
        "outputs_dir": r.outputs_dir,
        "dry_run": r.dry_run,
        "run_id": r.run_id,
        "refused": r.refused,
        "counts": r.counts(),
        "recovered_usd": r.recovered_micros / 1e6,
        "newer_takes": r.newer_takes,
        "recorded_cost_usd": r.recorded_cost_micros / 1e6,
        "to_pay": len(r.to_pay),
        "to_pay_usd": r.to_pay_micros / 1e6,
        "takes_left": r.takes_left,
        "unchecked": r.unchecked,
        "key_part_unknown": r.key_part_unknown,
        "in_flight_unknown": r.in_flight_unknown,
        "jobs": [{"key": f.key, "hash": f.hash, "path": f.path, "outcome": f.outcome, "why": f.why,
                  "cost_usd": f.cost_micros / 1e6, "provider_id": f.provider_id, "newer": f.newer} for f in r.jobs],
    }
