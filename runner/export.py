"""Exports: one stable row per job, as JSON Lines, CSV or JSON, from the state store alone.

The columns are documented in `reports/EXPORTS.md`; `ROW_FIELDS` is their order. A row never carries
secrets: only what `state.py` stores about a job (the request parameters are there, API keys never are).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import OutputsMovedError, StateError, UsageError, request_id_in
from .outputs import atomic_write, gridrun_sidecar, keep_foreign, tell, told  # noqa: F401 (told: read here by others)
from .state import EarlierBilled, Failures, JobRecord, RunRecord, Snapshot, Store
from .terminal import typed

FORMATS = ("jsonl", "csv", "json")
EXPORT_VERSION = 2

ROW_FIELDS: tuple[str, ...] = (
    "key",
    "sweep",
    "hash",
    "values",
    "prompt",
    "state",
    "error",
    "cost_estimate_usd",
    "cost_reported_usd",
    "output_path",
    "sha256",
    "width",
    "height",
    "duration",
    "submitted_at",
    "completed_at",
    "downloaded_at",
    "render_seconds",
    "attempts",
    "provider_id",
    "cached_from_run",
    "paid_in_run",
    "cost_this_run_usd",
    "cost_usd",
    "cost_doubted",
    "run",
    "provider",
    "endpoint",
    "simulated",
    "ended_at",
    "error_code",
    "failed_attempts",
    "same_code",
    "request_id",
    "cost_with_failed_attempts_usd",
)

# What the report and `status` call each state: a run still going shows its planned jobs as pending.
STATE_GROUPS: Mapping[str, str] = {
    "planned": "pending",
    "submitting": "running",
    "submitted": "running",
    "running": "running",
    "downloading": "running",
    "done": "done",
    "failed": "failed",
    "rejected": "failed",
    "unknown": "unknown",
    "expired": "expired",
    "cancelled": "cancelled",
}


def usd(micros: int | None) -> float | None:
    return None if micros is None else round(micros / 1_000_000, 6)


def usd_decimal(dollars: float) -> str:
    """A money figure (USD, to the micro-dollar, as `usd` gives it) as CSV writes it: fixed decimals, at least 2
    and at most 6, never an exponent ("0.80", "0.35", "0.000001", "990000.00")."""
    micros = round(dollars * 1_000_000)
    whole, rest = divmod(abs(micros), 1_000_000)
    return f"{'-' if micros < 0 else ''}{whole}.{f'{rest:06d}'.rstrip('0').ljust(2, '0')}"


# The CSV columns of money (USD): written as fixed decimals (`usd_decimal`), where a float would read 0.8 or 1e-06.
_MONEY = frozenset(f for f in ROW_FIELDS if f.endswith("_usd"))


def iso(ts: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC with milliseconds (`2026-11-25T15:12:03.250Z`)."""
    if ts is None:
        return None
    seconds, millis = divmod(round(ts * 1000), 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def relative_output(job: JobRecord, base: str | Path) -> str:
    """The job's output path relative to the folder `base`, with `/` separators."""
    try:
        rel = os.path.relpath(job.output_path, base)
    except ValueError:
        return job.output_path
    return rel.replace(os.sep, "/")


def others_video(job: JobRecord) -> bool:
    """The job is not done, and its path holds a video of gridrun's made for another request (the sidecar beside
    it names another job's hash: a copy a renamed sweep's or changed template's run left where this job's video
    goes): not this job's, so no row names it as its output."""
    if job.state == "done" or not job.output_path:
        return False
    doc = gridrun_sidecar(Path(job.output_path))
    return doc is not None and doc["hash"] != job.hash


def export_row(job: JobRecord, base: str | Path, run_id: int | None = None,
               failures: Failures | None = None, earlier: Sequence[EarlierBilled] = ()) -> dict[str, Any]:
    """The export row of one job of run `run_id`, its `output_path` relative to the folder `base`; keys in
    `ROW_FIELDS` order. `failures`: its failed attempts in figures, of a job that ended failed or rejected
    (`Snapshot.failures`); `earlier`: its billed attempts other than its current one (`Snapshot.earlier_billed`)."""
    rs = job.render_seconds
    prompt = job.params.get("prompt")
    return {
        "key": job.key,
        "sweep": job.sweep,
        "hash": job.hash,
        "values": dict(job.values),
        "prompt": prompt if prompt is None or isinstance(prompt, str) else json.dumps(prompt, default=str),
        "state": job.state,
        "error": job.error,
        "cost_estimate_usd": usd(job.cost_estimate_micros),
        "cost_reported_usd": usd(job.cost_reported_micros),
        "output_path": None if job.replaced or job.placeholder or others_video(job) else relative_output(job, base),
        "sha256": job.sha256,
        "width": job.size[0] if job.size else None,
        "height": job.size[1] if job.size else None,
        "duration": job.duration,
        "submitted_at": iso(job.submitted_at),
        "completed_at": iso(job.completed_at),
        "downloaded_at": iso(job.downloaded_at),
        "render_seconds": None if rs is None else round(rs, 3),
        "attempts": job.attempts,
        "provider_id": job.provider_id,
        "cached_from_run": job.cached_from_run,
        "paid_in_run": job.paid_run,
        "cost_this_run_usd": usd(_this_run_micros(job, run_id)),
        "cost_usd": usd(job.counted_micros),
        "cost_doubted": job.cost_doubted,
        "run": run_id,
        # where its current attempt (a done job's: the one that made its video) was sent, and by which provider
        "provider": job.sent_by,
        "endpoint": job.endpoint,
        "simulated": job.simulated if job.endpoint is not None else None,
        "ended_at": iso(job.ended_at),  # of a job that ended badly: when it reached its state
        # of a job that ended failed or rejected: the provider's code, its attempts that ended so, and whether every
        # attempt ended with that code (`status` says so in words: the same request refused alike each time)
        "error_code": None if failures is None else failures.code,
        "failed_attempts": None if failures is None else failures.attempts,
        "same_code": None if failures is None else failures.same_code,
        "request_id": request_id_in(job.error),  # the provider's id of the request its error answers, as it says it
        # its current attempt's cost (`cost_usd`) and what its billed attempts that left no video cost (a render
        # failed with a charge, then sent again by a failure retry or a retry), which no other figure of the row has
        "cost_with_failed_attempts_usd": usd(all_attempts_micros(job, earlier)),
    }


def all_attempts_micros(job: JobRecord, earlier: Sequence[EarlierBilled] = ()) -> int | None:
    """What `job` cost with its billed attempts that left it no video: its current attempt's counted cost and its
    `earlier` billed ones (`Snapshot.earlier_billed`); None while none was billed."""
    if job.counted_micros is None and not earlier:
        return None
    return (job.counted_micros or 0) + sum(b.micros for b in earlier)


def _this_run_micros(job: JobRecord, run_id: int | None) -> int | None:
    """What of the job's counted cost run `run_id` paid: all of it, or nothing when another run paid it (a
    cached job's); None while it has none."""
    if job.counted_micros is None:
        return None
    return job.counted_micros if job.paid_run == run_id else 0


def export_rows(snapshot: Snapshot, base: str | Path | None = None) -> list[dict[str, Any]]:
    """One stable row per job of the run, in plan order (columns: `ROW_FIELDS`, see reports/EXPORTS.md).

    `base`: the folder the rows are written into, which each `output_path` is relative to, so that it names
    the video from there (default: the run's outputs folder). An earlier run's results go beside the latest
    run's (`files_of`), which is another folder once the manifest's `outputs_dir` changed.
    """
    if not isinstance(snapshot, Snapshot):
        raise UsageError(f"export_rows takes the Snapshot `runner.status` returns (`runner.export_rows(runner.status("
                         f"path))`), got {type(snapshot).__name__}")
    if base is not None and not isinstance(base, (str, os.PathLike)):
        raise UsageError(f"base must be a folder's path (or None), got {type(base).__name__}")
    folder = snapshot.run.outputs_dir if base is None else base
    return [export_row(job, folder, snapshot.run.id, snapshot.failures.get(job.key),
                       snapshot.earlier_billed.get(job.key, ())) for job in snapshot.jobs]


def _job_costs(snapshot: Snapshot) -> dict[str, Any]:
    """The costs of the run's jobs whatever run paid them, each the sum of its export column (cached jobs
    included): `cost_estimate_usd` (the plan's estimate for these jobs), `cost_usd` (what they cost when made,
    as counted against the budget), `cost_this_run_usd` (the part this run paid), `cost_with_failed_attempts_usd`
    (`cost_usd` and `cost_failed_attempts_usd`, their billed attempts that left no video, sent again since),
    `cost_by_run` (run id -> its part of `cost_with_failed_attempts_usd`), `cost_doubted` (jobs whose
    reported figure was doubted, so that their estimate counts), and `cost_unreported` (done jobs with no reported
    figure). The figures as reported have no total: a doubted one is not what was paid."""
    jobs = snapshot.jobs
    by_run: dict[int, int] = {}
    for j in jobs:
        if j.counted_micros is not None and j.paid_run is not None:
            by_run[j.paid_run] = by_run.get(j.paid_run, 0) + j.counted_micros
    earlier = [b for j in jobs for b in snapshot.earlier_billed.get(j.key, ())]
    for b in earlier:
        if b.run is not None:
            by_run[b.run] = by_run.get(b.run, 0) + b.micros
    return {
        "cost_estimate_usd": usd(sum(j.cost_estimate_micros for j in jobs)),
        "cost_usd": usd(sum(j.counted_micros or 0 for j in jobs)),
        "cost_this_run_usd": usd(sum(_this_run_micros(j, snapshot.run.id) or 0 for j in jobs)),
        "cost_by_run": {str(r): usd(m) for r, m in sorted(by_run.items())},
        "cost_doubted": sum(1 for j in jobs if j.cost_doubted),
        "cost_unreported": sum(1 for j in jobs if j.state == "done" and j.cost_reported_micros is None),
        # renders this run paid that the provider billed above 5x their estimates, counted as billed (None: none)
        "cost_billed_above": snapshot.billed_above_note(),
        # the provider made two videos for one idempotency key (its request log lists another): that one was billed
        # too, and no row has it (None: it did not), as `status --json` says it
        "keys_ignored": snapshot.keys_ignored_note(),
        # the jobs' cost with their billed attempts that left no video (`cost_usd`, and the attempts billed for a
        # failed render that a failure retry or a retry sent again), as `cost_by_run` splits it
        "cost_with_failed_attempts_usd": usd(sum(j.counted_micros or 0 for j in jobs) + sum(b.micros for b in earlier)),
        "cost_failed_attempts_usd": usd(sum(b.micros for b in earlier)),
    }


def summary(snapshot: Snapshot) -> dict[str, Any]:
    """The run and its totals: jobs by state, what this run spent (counted, in flight, estimated), wall and
    render time, and what its jobs cost whichever run paid them (a run of cached jobs pays nothing for them)."""
    run = snapshot.run
    jobs = snapshot.jobs
    # Every state and group, zeros included, as `run --json` and `status --json` count them: a reader's
    # summary["groups"]["failed"] is 0, not a KeyError.
    counts = dict(snapshot.counts)
    groups = dict.fromkeys(dict.fromkeys(STATE_GROUPS.values()), 0)
    for state, n in counts.items():
        group = STATE_GROUPS.get(state, state)
        groups[group] = groups.get(group, 0) + n
    fresh = [j for j in jobs if j.cached_from_run is None]
    left = set(snapshot.placeholders_left) - {j.key for j in fresh}
    own = [j for j in fresh if snapshot.made_here(j)]
    done = [j for j in own if j.state == "done"]
    renders = [rs for j in own if (rs := j.render_seconds) is not None]
    # a run whose process died: up to its last record, as `status` measures it (and as its `ended_at` says once the
    # next run marks it crashed)
    end = (run.ended_at if run.ended_at is not None else
           snapshot.last_record() if run.process_gone() else snapshot.taken_at)
    return {
        "run": {
            "id": run.id,
            "manifest_name": run.manifest_name,
            "provider": run.provider,
            "model": run.model,
            "axes": list(run.axes),
            "status": run.shown_status,  # `gone`, as `status` shows it, for a run whose process died unrecorded
            # the cause it stopped on, not its jobs' (`disk-full`), and what to do, as recorded or, for a gone run,
            # inferred (`RunRecord.stop_cause`); null: none known. The export reads the state without planning the
            # manifest, which may have changed since, so an inferred note proposes no `gridrun run`, as `status
            # --runs` gives it (`status M` gives the step)
            **dict(zip(("stopped_by", "stopped_note"), run.stop_cause(resumes=False), strict=True)),
            "started_at": iso(run.started_at),
            "ended_at": iso(run.ended_at),
            "snapshot_at": iso(snapshot.taken_at),
            "wall_seconds": round(run.wall_seconds(end), 3),
            "outputs_dir": run.outputs_dir,
            # where it sent its creates, each once, and whether a simulator answered there
            "endpoints": [{"endpoint": at, "simulated": simulated} for at, simulated in snapshot.endpoints],
        },
        "jobs": len(jobs),
        "counts": counts,
        "groups": groups,
        "cached": len(jobs) - len(fresh),
        "spent_usd": usd(snapshot.spent_micros),
        "reserved_usd": usd(snapshot.reserved_micros),
        "budget_usd": usd(run.budget_micros),
        # of `spent_usd`, what simulators billed: made-up figures, nothing paid
        "spent_simulated_usd": usd(snapshot.spent_simulated_micros),
        # the jobs left to pay for, as the report's header counts them: neither cached nor done with a video an
        # earlier run made (fetched again, kept when a re-render here was cancelled or failed), and the placeholders
        # a simulator made elsewhere this run left as they were, which a plain run renders again
        "estimate_usd": usd(sum(j.cost_estimate_micros for j in fresh
                                if not (j.state == "done" and not snapshot.made_here(j)))
                            + sum(j.cost_estimate_micros for j in jobs if j.key in left)),
        "done_estimate_usd": usd(sum(j.cost_estimate_micros for j in done)),
        "done_cost_usd": usd(sum(j.cost_micros for j in done if j.cost_micros is not None)),
        "done_unreported": sum(1 for j in done if j.cost_reported_micros is None),
        "render_seconds_total": round(sum(renders), 3),
        "render_seconds_median": round(statistics.median(renders), 3) if renders else None,
        # attempts of unknown outcome runs of the manifest sent that `retry --unknown` sent again: settled as
        # failed, in no figure above, yet the provider may have billed them (their estimates)
        "possibly_billed_jobs": len(snapshot.possibly_billed),
        "possibly_billed_usd": usd(sum(micros for _, _, micros in snapshot.possibly_billed)),
        "possibly_billed_simulated_usd": usd(snapshot.possibly_billed_simulated_micros),  # of it, simulators' answers
        **_job_costs(snapshot),
    }


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any, **kw: Any) -> str:
    """JSON that every parser reads: NaN and infinities become strings, unknown types their str()."""
    try:
        return json.dumps(value, allow_nan=False, default=str, **kw)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False, default=str, **kw)


# A text cell starting with one of these is a formula to a spreadsheet (=cmd|..., =HYPERLINK(...), @SUM):
# prompts and errors are data, so such a cell gets a leading apostrophe, which spreadsheets show as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple, bool)):
        value = dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)  # text to a spreadsheet: -inf is guarded below
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _number(value):
        return "'" + value
    return value


def _number(text: str) -> bool:
    """A number written as text (-0.5 from a data file): a spreadsheet reads it as a number, never a formula."""
    try:
        number = float(text)
    except ValueError:
        return False
    # "-inf", "-nan" and "-1_0" are numbers to Python, not to a spreadsheet (#NAME?)
    return text.strip() == text and math.isfinite(number) and "_" not in text


# Characters other than "\n" that line readers break lines at (Python's `str.splitlines`, some terminals and
# log readers): written as JSON escapes, so each row stays on one line for every reader.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def to_jsonl(rows: Iterable[Mapping[str, Any]]) -> str:
    """One JSON object a line, non-ASCII text as it is but for the line and paragraph separators and NEL
    (`_LINE_BREAKS`), escaped: in JSON they occur only inside strings, where the escape reads the same."""
    text = "".join(dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)
    return text.translate(_LINE_BREAKS) if any(c in text for c in "\x85\u2028\u2029") else text


def to_csv(rows: Sequence[Mapping[str, Any]], axes: Sequence[str] = ()) -> str:
    """CSV with `values` spread into one `values.<key>` column per matrix key (declaration order first)."""
    keys: dict[str, None] = dict.fromkeys(axes)
    for row in rows:
        keys.update(dict.fromkeys(row["values"]))
    head = list(ROW_FIELDS)
    at = head.index("values")
    head[at : at + 1] = [f"values.{k}" for k in keys]
    out = _LineFeed()
    # A "\r\n" terminator makes the writer quote every cell holding a CR or an LF (with "\n" alone a CR is
    # written bare, and every reader splits the row there); `_LineFeed` ends each line with "\n" all the same.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(head)
    for row in rows:
        values = row["values"]
        line: list[Any] = []
        for field in ROW_FIELDS:
            if field == "values":
                line.extend(_cell(values.get(k)) for k in keys)
            elif field in _MONEY and isinstance(row[field], (int, float)) and math.isfinite(row[field]):
                line.append(usd_decimal(row[field]))
            else:
                line.append(_cell(row[field]))
        writer.writerow(line)
    return out.getvalue()


class _LineFeed(io.StringIO):
    r"""Text a csv writer writes a line at a time (ended "\r\n"), each line kept ended "\n"."""

    def write(self, line: str) -> int:
        if line.endswith("\r\n"):
            line = line[:-2] + "\n"
        return super().write(line)


def to_json(snapshot: Snapshot, rows: Sequence[Mapping[str, Any]]) -> str:
    doc = {"version": EXPORT_VERSION, "summary": summary(snapshot), "rows": list(rows)}
    return dumps(doc, ensure_ascii=False, indent=1) + "\n"


def same_folder(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one folder: equal once made absolute with their links followed, or the same
    folder on disk (a bind mount, a case-insensitive file system)."""
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
        return os.path.samefile(a, b)
    except (OSError, RuntimeError):  # one of them is not there (or a link loop): not the other
        return False


# What a run of a copied or moved project does that writes its report where the manifest now puts its videos: the
# videos found there (or copied from the folder the run recorded) are paid for no more, but a plain run sends the
# jobs not done yet too; with no budget it sends none of them.
RUN_THERE = ("paying nothing for them, and writes the report there; it sends the jobs not done yet too, at what "
             "`gridrun plan` says they cost (`gridrun run --budget 0 --allow-partial` sends none of them)")


def elsewhere_error(run_id: int, recorded: str | Path, home: Path) -> StateError:
    """The refusal to write the files of a run whose videos the state records in another folder than the
    one the manifest now names (a copied or moved project)."""
    return OutputsMovedError(
        f"{home}: run {run_id} of the state here recorded its videos in {recorded}, not in this folder the "
        "manifest now names (the project was copied or moved): its report and results would describe the "
        "videos of another folder, so nothing was written. `gridrun run` on the manifest finds its videos "
        f"where it now puts them, {RUN_THERE}")


def gone_error(run_id: int, folder: str | Path, home: Path | None = None) -> StateError:
    """The refusal to write the files of a run whose output folder is gone. `home`, the output folder the
    manifest now names: when that is there and another folder, the project moved, and a run puts it right;
    otherwise a run refuses too (`resume.check_outputs_there`) until the folder is back or made knowingly."""
    if os.path.lexists(folder) and not os.path.isdir(folder):
        # a file (or a link to none) in the folder's place: no mkdir makes the folder there
        what = ("a link to nothing (its target moved, or its disk not mounted)" if os.path.islink(folder)
                else "a file, not a folder")
        runs = typed(Path(folder) / ".runs")
        return StateError(f"{folder}: run {run_id}'s output folder is {what}. Move that away and put the folder back "
                          f"(one renamed, say), then run this again; or, with it moved away, make the folder anew "
                          f"(mkdir -p {runs}) and `gridrun run` on the manifest, which downloads its videos there "
                          "again (at no cost while the provider keeps them) and writes the report there")
    gone = f"{folder}: run {run_id}'s output folder is gone (moved or deleted, or its disk not mounted)"
    if home is not None and home.is_dir() and not same_folder(home, folder):
        return OutputsMovedError(f"{gone}. The manifest now names {home}: `gridrun run` on it finds the videos "
                                 f"there if the project moved, {RUN_THERE}")
    runs = typed(Path(home or folder) / ".runs")
    return StateError(
        f"{gone}. Mount that disk, or put the folder back, then run this again; or, to download its videos "
        f"again there (at no cost while the provider keeps them), make it (mkdir -p {runs}) and `gridrun run` "
        "on the manifest, which writes the report there")


def tell_unreadable(found: Mapping[str, str], files: str, *snapshots: Snapshot) -> None:
    """The warning for the videos a report or results could not read (`outputs.unreadable_videos`) that are the
    videos of the jobs of `snapshots` (not another copy tried first, where a readable one was found): how many,
    the first, its owner and mode, and that they are there, not lost."""
    named = {p for snap in snapshots for j in snap.jobs for p in (j.output_path, j.earlier and j.earlier.output_path)
             if p}
    found = {p: why for p, why in found.items() if p in named}
    if not found:
        return
    path, why = next(iter(found.items()))
    n = len(found)
    videos = "1 video" if n == 1 else f"{n:,} videos"
    it, its, are = ("it", "its", "it is") if n == 1 else ("them", "their", "they are")
    said = (f"the report shows {it} as not readable here" if files == "report"
            else f"the results keep {its} output_path")
    tell(f"{videos} could not be read here: Permission denied: {path} ({why}). Not missing: {are} there, paid "
         f"for, nothing to render again; {said}. Ask {its} owner to make {it} readable to you (chmod g+r, and g+rx "
         f"on the folders), or read {it} as that user", "warning")


def latest_of_folder(store: Store, manifest_name: str, home: Path | None) -> RunRecord | None:
    """The manifest's latest run as its output folder `home` takes it (`Store.latest_run_of_folder`): the latest,
    unless that run wrote another checkout's folder sharing this state; then the newest run that wrote `home`
    (None: none did)."""
    if home is None:
        return store.latest_run(manifest_name)
    return store.latest_run_of_folder(manifest_name, home)


def chosen_run(store: Store, manifest_name: str | None, home: Path | None, files: str) -> int | None:
    """The run whose `files` (its report, its results) `report` or `export` write when no run is named: the
    manifest's latest (None: as `Store.snapshot` takes it), or, where that run wrote another checkout's folder
    (`latest_of_folder`), the latest run of `home`, said so (`told`).

    :raises StateError: no run wrote `home` yet, only the other checkout's."""
    if manifest_name is None or home is None:
        return None
    latest = store.latest_run(manifest_name)
    own = latest_of_folder(store, manifest_name, home)
    if latest is None or (own is not None and own.id == latest.id):
        return None
    whose = f"(another checkout sharing this state, manifest {latest.manifest_path})"
    if own is None:
        raise StateError(
            f"{home}: run {latest.id} of the state wrote {latest.outputs_dir} {whose}, and no run of this state wrote "
            f"this folder yet: its {files} would describe the videos of that folder, so nothing was written. `gridrun "
            "run` on the manifest copies the videos done there into this folder, paying nothing, and writes the "
            "report here")
    command, name = ("report", f"report-run-{latest.id}.html") if files == "report" else (
        "export", f"results-run-{latest.id}.*")
    tell(f"run {latest.id} of the state wrote {latest.outputs_dir} {whose}: this is run {own.id}, the latest run "
         f"of {home}; `gridrun {command} --run {latest.id}` writes that run's {files} here too ({name})")
    return own.id


def run_folder(snapshot: Snapshot, home: Path | None = None) -> Path:
    """The run's output folder, where its report and results files go.

    `home`, the output folder the manifest now names: the run's must be that one.

    :raises StateError: the folder is gone, and the run's videos with it (the project moved, say): files
        written there would name videos that are not there, and make the folder again away from them; or it
        is not `home` (the project was copied, and the run's folder is the original's).
    """
    folder = Path(snapshot.run.outputs_dir)
    if not folder.is_dir() and any(j.state == "done" and not os.path.exists(j.output_path) for j in snapshot.jobs):
        raise gone_error(snapshot.run.id, folder, home)
    if home is not None and not same_folder(folder, home):
        raise elsewhere_error(snapshot.run.id, folder, home)
    return folder


def earlier_folder(runs: Sequence[RunRecord], latest: RunRecord | None, home: Path | None) -> Path | None:
    """Where files about earlier runs go (a comparison, an earlier run's report or results): the first of the
    runs' folders still there, else that of the manifest's `latest` run (a moved project: a run since made it);
    with `home`, the output folder the manifest now names, that one only, if one of those runs recorded it.
    None: none of the folders is there.

    :raises StateError: `home` is none of the runs' folders (a copied or moved project), or is gone.
    """
    homes = [r.outputs_dir for r in (*runs, latest) if r is not None]
    if home is not None:
        last = latest or runs[0]
        if not any(same_folder(d, home) for d in homes):
            raise elsewhere_error(last.id, last.outputs_dir, home)
        if not home.is_dir():
            raise gone_error(last.id, home, home)
        homes = [str(home)]
    return next((Path(d) for d in homes if Path(d).is_dir()), None)


def files_of(store: Store, snapshot: Snapshot, home: Path | None = None) -> tuple[Path, str]:
    """The folder of a run's report and results files, and what their names end with: "" for the manifest's
    latest run (report.html, results.csv), "-run-N" for an earlier one (report-run-N.html), whose files are then
    written beside the latest run's, not over them.

    :raises StateError: as `run_folder` (the latest run), `earlier_folder` (an earlier one).
    """
    latest = latest_of_folder(store, snapshot.run.manifest_name, home)
    if latest is None or latest.id == snapshot.run.id:
        return run_folder(snapshot, home), ""
    folder = earlier_folder((snapshot.run,), latest, home)
    return (folder if folder is not None else run_folder(snapshot, home)), f"-run-{snapshot.run.id}"


def write_exports(
    store: Store,
    *,
    run_id: int | None = None,
    manifest_name: str | None = None,
    formats: Sequence[str] = FORMATS,
    directory: Path | None = None,
    home: Path | None = None,
) -> list[Path]:
    """Write `results.<format>` for each format into `directory` (default: the run's outputs folder, which
    must be `home` when that is given: the output folder the manifest now names). The results of a run before
    the manifest's latest are `results-run-N.<format>` (`files_of`). Each row's `output_path` is relative to
    the folder written into. A run id given with `manifest_name` must be one of that manifest's.

    :raises UsageError: an unknown format.
    :raises NotRecordedError: no such run, or one of another manifest.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(f"unknown export format {', '.join(map(str, unknown))}; choose from {', '.join(FORMATS)}")
    from .outputs import unreadable_videos

    if run_id is None:
        run_id = chosen_run(store, manifest_name, home, "results")
    with unreadable_videos() as unread:  # a teammate's video this user may not read keeps its path
        snapshot = store.snapshot(run_id, manifest_name=manifest_name)
    folder, suffix = files_of(store, snapshot, home)
    target = Path(directory) if directory is not None else folder
    rows = export_rows(snapshot, target)
    tell_unreadable(unread, "results", snapshot)
    texts: dict[Path, str] = {}
    for fmt in dict.fromkeys(formats):
        if fmt == "jsonl":
            text = to_jsonl(rows)
        elif fmt == "csv":
            text = to_csv(rows, snapshot.run.axes)
        else:
            text = to_json(snapshot, rows)
        texts[target / f"results{suffix}.{fmt}"] = text
    return _write_all(texts, target, keep=directory is None)


def _write_all(texts: Mapping[Path, str], folder: Path, *, keep: bool) -> list[Path]:
    """Write each file of `texts` (path -> text) in `folder`, all or none as far as the file system lets: each is
    first written whole beside its place, and only once all are does each take its place, so that a file that
    cannot be written (a folder in its way, a full disk) leaves the others as they were, not of another moment.
    `keep`: a file gridrun did not write in a place is kept first (`keep_foreign`).

    :raises OSError: naming the file that could not be written; when others took their places before it (a
        rename refused), the error says which.
    """
    for path in texts:
        if path.is_dir() and not path.is_symlink():
            raise IsADirectoryError(errno.EISDIR, f"{os.strerror(errno.EISDIR)}; no results file was written",
                                    str(path))
    staged: dict[Path, Path] = {}
    try:
        for path, text in texts.items():
            ready = path.with_name(f".{path.name}.{os.getpid()}.export")
            try:
                atomic_write(ready, text, durable=False)
            except OSError as exc:
                if exc.filename == str(ready):
                    exc.filename = str(path)
                raise
            staged[path] = ready
        if keep:
            for path in texts:
                keep_foreign(path, folder)
        written: list[Path] = []
        for path, ready in staged.items():
            try:
                os.replace(ready, path)
            except OSError as exc:
                if not written:
                    raise OSError(exc.errno, f"{exc.strerror or exc}; no results file was written", str(path)) from None
                raise OSError(exc.errno, f"{exc.strerror or exc}; written before it: "
                              f"{', '.join(p.name for p in written)} (the others are as they were)", str(path)) from None
            written.append(path)
        return written
    finally:
        for ready in staged.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(ready)
