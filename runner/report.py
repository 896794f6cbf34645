"""The HTML report of a run, built from the state store alone.

`render(snapshot)` is pure: a snapshot in, one self-contained page out (Jinja2 with autoescape; the data
rides in a `<script type="application/json">` block that a small inline script lays out as a pivotable
grid). `write_report` adds the I/O around it: poster frames beside the videos, then an atomic write
beside them, so the folder opens offline and can be zipped as it is. Exports live in `export.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import quote

from markupsafe import Markup

from .export import (
    STATE_GROUPS, chosen_run, dumps, earlier_folder, export_rows, files_of, run_folder, summary, tell, tell_unreadable,
    usd, write_exports,
)
from .jobs import format_value, job_key, span_text, usd_text
from .localpaths import within
from .outputs import (
    POSTER_MARK, POSTERS_NOT_WRITTEN, STAMP_SET, Digests, atomic_write, broken_poster, disk_full, files_beside,
    ended_then, gridrun_poster, holds_take, keep_broken_poster, keep_foreign, poster_kept, poster_path, poster_size, stamp_path,
    stamp_taken, superseded_dir, sync_folder, unreadable_videos, unreadable_why, write_problem,
)
from .records import placeholders_failed_note, rerenders_cancelled_note, rerenders_failed_note
from .resources import resource_dir
from .state import RUNS_GITIGNORE, EarlierBilled, JobRecord, RunRecord, Snapshot, Store, keep_out_of_version_control
from .sweeps import IMAGE_PARAMS

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = [
    "REPORTS_DIR",
    "ReportMemo",
    "ensure_posters",
    "make_posters",
    "export_rows",
    "poster_path",
    "render",
    "write_compare_report",
    "write_exports",
    "write_report",
]

REPORTS_DIR = resource_dir("reports")
# The groups of job states the report counts and filters by: the export's, but a rejected job apart from a failed
# one, as `status` counts them (a `retry` sends both again, yet a rejected create was never paid for).
GROUPS: Mapping[str, str] = {**STATE_GROUPS, "rejected": "rejected"}
GROUP_ORDER = ("done", "running", "pending", "failed", "rejected", "unknown", "expired", "cancelled")
# What the header calls a group in the page of a run that is not going on.
STOPPED_LABELS: Mapping[str, str] = {"running": "left in flight"}
DATA_VERSION = 1
# Where a job sits on a matrix key it does not have (a sweep without that key, a key an `include` adds to other
# jobs): not a value, so no value's label can equal it; the page shows it as "(unset)", apart from a value "(unset)".
MISSING = None
SWEEP_AXIS = "@sweep"
REPEAT_AXIS = "@repeat"
_REPEAT = re.compile(r"^(.*)#(\d+)$")


# --------------------------------------------------------------------------------------------------
# The page


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    # jinja2 is imported only to write the page: the posters, and a page's out-of-date mark, do without it
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(REPORTS_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = _count
    env.filters["vis"] = _visible
    return env


# A bidirectional embedding, override or isolate (U+202E reverses what follows it), which the page's script writes
# as in a string ("\u202e") wherever it shows a value (report.js `vis`): the same for the text the server writes.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _visible(text: str) -> str:
    return _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _count(n: int) -> str:
    """A count as the CLI writes it: 2,500."""
    return f"{n:,}"


@functools.lru_cache(maxsize=4)
def _asset(name: str) -> Markup:
    # Our own CSS and JS, inlined as they are: escaping them would break `a > b` selectors and `&&`.
    return Markup((REPORTS_DIR / name).read_text(encoding="utf-8"))


class ReportMemo:
    """What a report rebuilt again and again during a run keeps between builds: the job records whose
    rows did not change (`Store.snapshot(reuse=...)`), the page entry of each, with its JSON text, and the
    manifest's description, read from the run's copy of the manifest once, not at every build."""

    def __init__(self) -> None:
        self.records: dict[int, tuple[tuple[Any, ...], JobRecord]] = {}
        self._items: dict[int, tuple[JobRecord, dict[str, Any], str]] = {}
        self._context: tuple[Any, ...] | None = None
        self._rows: dict[str, tuple[dict[str, Any], str]] = {}  # item key -> (the entry, its row of the plain table)
        self._rows_context: tuple[Any, ...] | None = None
        self._described: tuple[str, str | None] | None = None  # (the manifest's text, its description)

    def description(self, manifest_text: str) -> str | None:
        """`_description(manifest_text)`, parsed again only when the text is another."""
        if self._described is None or self._described[0] != manifest_text:
            self._described = (manifest_text, _description(manifest_text))
        return self._described[1]

    def use(self, context: tuple[Any, ...]) -> None:
        """Entries are kept for one `context` (the page's folder, its common parameters and axes)."""
        if context != self._context:
            self._items.clear()
            self._context = context

    def item(self, job: JobRecord) -> tuple[dict[str, Any], str] | None:
        hit = self._items.get(job.id)
        if hit is None or hit[0] is not job:
            return None
        return hit[1], hit[2]

    def keep(self, job: JobRecord, item: dict[str, Any]) -> str:
        text = _json_text(item)
        self._items[job.id] = (job, item, text)
        return text

    def rows_for(self, context: tuple[Any, ...]) -> None:
        """Rows of the plain table are kept for one `context` (the runs' ids, whether each is its manifest's
        latest and whether it still goes on, the other runs' names)."""
        if context != self._rows_context:
            self._rows.clear()
            self._rows_context = context

    def row(self, item: Mapping[str, Any]) -> str | None:
        """The row of the plain table kept for the very entry `item` (an entry kept by `keep` and handed back by
        `item`, its job unchanged); None for another."""
        hit = self._rows.get(item["key"])
        return hit[1] if hit is not None and hit[0] is item else None

    def keep_row(self, item: dict[str, Any], row: str) -> None:
        self._rows[item["key"]] = (item, row)


def _json_text(value: Any) -> str:
    """JSON safe inside a <script> element, as Jinja's `tojson` writes it (<, >, & and ' escaped). The
    escapes are per character, so the text of a whole is the texts of its parts put together."""
    from jinja2.utils import htmlsafe_json_dumps

    return str(htmlsafe_json_dumps(value, dumps=dumps, ensure_ascii=False, separators=(",", ":")))


def render(
    snapshot: Snapshot,
    *,
    compare: Snapshot | None = None,
    title: str | None = None,
    base_dir: Path,
    memo: ReportMemo | None = None,
    description: str | None = None,
    refresh: float | None = None,
    digests: Digests | None = None,
    stamp: str | None = None,
) -> str:
    """The report page of `snapshot` (with `compare`: run A = snapshot beside run B = compare).

    Pure: reads no files but the templates (and, for a compare of two runs that wrote one path, the file there:
    `digests` remembers what it hashed, which the caller saves). `base_dir` is the folder the page will sit in; videos and
    posters are linked relative to it. `refresh`, for the live page of a run going on: the most seconds it
    lets pass before it writes the next (`live.rebuilt_within`), which the page waits well past before it
    says the run stopped updating it. `stamp`: where, relative to the page, the run writes its snapshot's stamp
    (`stamp_path`), which a live page loads now and then to reload only when a newer snapshot is there.
    """
    snaps = [snapshot] if compare is None else [snapshot, compare]
    if title is None:
        run = snapshot.run
        title = f"{run.manifest_name} · run {run.id}"
        if compare is not None:
            title = f"{run.manifest_name} · run {run.id} vs run {compare.run.id}"
    data, texts = _page_data(snaps, title=title, base_dir=Path(base_dir), memo=memo, refresh=refresh,
                             digests=digests, stamp=stamp)
    sums = [_display_summary(s) for s in snaps]
    page = _environment().get_template("report.html.j2").render(
        title=title,
        description=description,
        mode="compare" if compare is not None else "single",
        runs=sums,
        compare=data.get("compare"),
        live=data["live"],
        data_json=Markup(_data_text(data, texts)),
        static_jobs=_static_jobs(data, memo if compare is None else None),
        css=_asset("report.css"),
        js=_asset("report.js"),
    )
    return page


PAIRED = {"axes": "paired by the axes both runs have", "path": "paired by output path"}  # as report.js says it
RERUN_FAILED = "re-render (--force) failed, the earlier video kept"  # as the grid's script says it (report.js)
# as the grid's script says it, in the words of `status` (`rerenders_cancelled_note`)
RERUN_CANCELLED = "re-render (--force, retry) cancelled at the provider: the earlier video kept, the job done as before"
# a done job's video this user may not read (as the grid's script says it, report.js `unreadable`)
UNREADABLE = "video not readable here (permission denied)"
# a done job's video no longer at its path (as the grid's script says it, report.js `gone`): replaced or edited
# since, or deleted (`missing`), which the manifest's latest run fetches again (the file there kept aside first),
# unless a later render (`later`) is the job's take now
REPLACED = "its video is no longer kept (replaced or edited since)"
EDITED = "its video was replaced or edited since"
VIDEO_MISSING = "video file missing"
REFETCHED = ("`gridrun run` fetches it again (free) while its download link lasts (else `gridrun retry` renders it"
             " again, paid)")
REFETCHED_ASIDE = ("`gridrun run` keeps that file under .runs/superseded/ and fetches the video again (free) while its"
                   " download link lasts (else `gridrun retry` renders it again, paid)")


def _gone_text(job: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    if job.get("missing"):
        return f"{VIDEO_MISSING}: {REFETCHED}" if run.get("latest") else f"{VIDEO_MISSING} (deleted since)"
    return f"{EDITED}: {REFETCHED_ASIDE}" if run.get("latest") and not job.get("later") else REPLACED


def _static_jobs(data: Mapping[str, Any], memo: ReportMemo | None = None) -> Markup:
    """The page's jobs as rows of a plain table, for a browser without JavaScript (the page's script lays out the
    grid in its place): each job's key, then for each run its status (and error), cost, and its video as a link
    around its poster. Lean, as a page of thousands of jobs carries it all: end tags HTML lets go are left out,
    and the prompt and parameters, the grid's, are not repeated here. With `memo` (a page rebuilt during a run), the
    row of an entry the memo kept, its job unchanged, is the one written last time."""
    runs = data["runs"]
    others = data.get("otherRuns") or {}

    def run_name(run_id: int) -> str:  # as the grid names a run: "run 10", or "run 10 of grid" of another manifest
        other = others.get(str(run_id))
        return f"run {run_id}" + (f" of {_esc(other)}" if other is not None else "")

    if memo is not None:  # what a row reads beside its entry
        memo.rows_for((tuple((run["id"], bool(run.get("latest")), run.get("status", "running")) for run in runs),
                       tuple(sorted(others.items()))))
    rows: list[str] = []
    for item in data["items"]:
        if memo is not None:
            kept = memo.row(item)
            if kept is not None:
                rows.append(kept)
                continue
        key = item["key"] if "was" not in item else f"{item['was']} → {item['key']}"
        label = key
        if "by" in item:  # two jobs paired as counterparts, as the grid says it (report.js `PAIRED`)
            key += f" ({PAIRED[item['by']]}: not the same job)"
        cells = [f"<tr><th>{_esc(key)}"]
        for r, job in enumerate(item["jobs"]):
            if job is None:
                cells.append(f"<td colspan=3>not in run {runs[r]['id']}")
                continue
            state = "pending" if job["state"] == "planned" else job["state"]
            # the run no longer going on (ended, or its process gone): a job it left in flight is not being
            # worked on, as the grid's card says it (report.js `placeholder`)
            stopped = runs[r].get("status", "running") != "running"
            if stopped and GROUPS.get(job["state"], job["state"]) == "running":
                state += " when the run stopped"
            # a job another run paid for (cached, or sent by an earlier run) shows that run, as the grid does:
            # this run paid nothing for it
            by = job.get("paid") or job.get("cached")
            by = by if by and by != runs[r]["id"] else None
            if job.get("unsent"):  # to be re-rendered (--force), not sent: its earlier take, not one cached
                state += f" ({_unsent_note(job, stopped, run_name)})"
            elif by and job.get("cached"):  # a re-render here kept it (cancelled, failed): made earlier, not cached
                state += f" ({'made earlier in' if job.get('kept') else 'cached from'} {run_name(by)})"
            rerender = job.get("rerender")
            if rerender is not None:  # the video linked is the earlier take, until the new one arrives
                take = f"{run_name(rerender['run'])}'s take" if "run" in rerender else "the earlier take"
                what = "a re-render of unknown outcome" if job["state"] == "unknown" else "a re-render"
                state += f" ({what}: {take} {_rerender_kept(rerender)})"
            err = job.get("err")
            rerr = job.get("rerr")
            cells.append(f"<td>{state}" + (f": {_esc(err)}" if err else "")
                         + (f"; {_esc(RERUN_FAILED)}: {_esc(rerr)}" if rerr is not None else "")
                         + (f"; {_esc(RERUN_CANCELLED)}" if job.get("rcan") else ""))
            more = f" ({_earlier_words(job, run_name)})" if job.get("xa") else ""
            cells.append("<td>" + _cost_text(job) + more + (f" · {run_name(by)}" if by else ""))
            src = job.get("src")
            if src:
                # (no loading="lazy": a browser loads every image of a page without scripts as it comes)
                # named after its job, as the grid's poster is ("first frame of <key>", "…, run A")
                alt = f"first frame of {label}" + (f", run {'AB'[r]}" if len(runs) > 1 else "")
                cells.append(f'<td><a href="{_esc(src)}"><img src="{_esc(job["poster"])}" alt="{_esc(alt)}"></a>')
            elif job.get("replaced") and job["state"] == "done":
                cells.append(f"<td>{_esc(_gone_text(job, runs[r]))}")
            elif job.get("unread"):
                cells.append(f"<td>{_esc(UNREADABLE)}: {_esc(job['unread'])}")
            else:
                cells.append("<td>–")
        rows.append("".join(cells))
        if memo is not None:
            memo.keep_row(item, rows[-1])
    if len(runs) > 1:
        head = "".join(f"<th>run {'AB'[r]} ({run['id']}) {what}" for r, run in enumerate(runs)
                       for what in ("status", "cost", "video"))
    else:
        head = "<th>status<th>cost<th>video"
    # in a box that scrolls sideways: a window narrower than the table scrolls it, not the page (nor a column
    # squeezed to a few letters a line); focusable, so that a keyboard scrolls it too
    return Markup('<div class="static-jobs-box" tabindex="0" role="region" aria-label="jobs">'
                  f'<table class="static-jobs"><thead><tr><th>job{head}</thead><tbody>\n'
                  + "\n".join(rows) + "\n</tbody></table></div>")


# the groups of the states a job ends in: one of them with no cost figure had none reported, it costs no estimate
_ENDED = frozenset({"done", "failed", "rejected", "expired", "cancelled"})


def _cost_text(job: Mapping[str, Any]) -> str:
    """A job's cost (its page entry) as the grid's cards say it (report.js `costOf`): the figure counted; nothing
    for a job whose create was refused; "not reported" for another that ended without a figure; the estimate only
    for a job not sent yet, in flight or of unknown outcome, where it is what may be charged."""
    cost, est, state = job.get("cost"), job.get("est"), job["state"]
    if cost is not None:
        return usd_text(cost)
    if state == "rejected":
        return f"{usd_text(0)} (nothing paid)"
    if GROUPS.get(state, state) in _ENDED:
        return "– (not reported)"
    return f"~{usd_text(est)} estimated" if est is not None else "–"


def _earlier_words(job: Mapping[str, Any], run_name: Callable[[int], str]) -> str:
    """What a job's billed attempts other than its take cost (its page entry's `xa`), as the grid's card says it
    after its cost (report.js `earlierWords`): "+$0.175 for a cancelled re-render, run 2", "+$0.70 for 2 failed
    attempts, run 1, run 2"; each kind by how its attempts ended, before the take (sent again) or after it (a
    re-render), with the runs their charges count for (`run_name` names them)."""
    kinds: dict[str, tuple[int, list[int]]] = {}
    for state, run, rerender in job.get("xk") or ():
        what = f"{state or 'earlier'} {'re-render' if rerender else 'attempt'}"
        n, runs = kinds.get(what, (0, []))
        if run is not None and run not in runs:
            runs.append(run)
        kinds[what] = (n + 1, runs)
    if not kinds:
        kinds["failed attempt" if job.get("xf") else "earlier attempt"] = (job.get("xn") or 0, [])
    said = [(_an(what) if n == 1 else f"{n} {what}s")
            + "".join(f", {run_name(run)}" for run in runs) for what, (n, runs) in kinds.items()]
    return f"+{usd_text(job['xa'])} for {'; '.join(said)}"


def _unsent_note(job: Mapping[str, Any], stopped: bool, run_name: Callable[[int], str]) -> str:
    """A done job its run is to render again (--force) and has not sent (its page entry's `unsent`), as the grid
    says it (report.js `unsentNote`): its video the earlier take, as it was; once the run stopped, not re-rendered."""
    by = job.get("paid") or job.get("cached")
    take = (f"{run_name(by)}'s take" if by else "the earlier take") + (
        f" ({usd_text(job['cost'])})" if job.get("cost") is not None else "")
    if stopped:
        return f"not re-rendered: the run stopped before sending it; {take} kept"
    return f"to be re-rendered: {take} shown, kept until a new one arrives"


def _rerender_kept(rerender: Mapping[str, Any]) -> str:
    """What became of the earlier take a re-render's cell shows (its `rerender` entry), as the grid says it."""
    if rerender.get("gone"):
        return "was its video, replaced by a later take and not kept"
    if rerender.get("aside"):
        return "shown, kept aside since a later take replaced it"
    return "shown, kept until a new one arrives"


def _esc(text: str) -> str:
    return str(Markup.escape(_visible(text)))


def _display_summary(snapshot: Snapshot) -> dict[str, Any]:
    s = summary(snapshot)
    run = snapshot.run
    s["started"] = _when(run.started_at)
    s["ended"] = _when(run.ended_at)
    s["snapshot"] = _when(snapshot.taken_at)
    s["wall"] = _duration(s["run"]["wall_seconds"])
    s["render_total"] = _duration(s["render_seconds_total"])
    s["render_median"] = None if s["render_seconds_median"] is None else _duration(s["render_seconds_median"])
    s["money"] = {k: _money(s[k]) for k in ("spent_usd", "reserved_usd", "budget_usd", "estimate_usd",
                                            "done_estimate_usd", "done_cost_usd", "cost_estimate_usd",
                                            "cost_usd", "cost_failed_attempts_usd")}
    s["earlier_attempts"] = _earlier_attempts_note(snapshot)
    s["all_runs"] = _all_runs(snapshot)
    s["all_runs_label"] = _all_runs_label(snapshot)
    s["possibly_billed"] = snapshot.possibly_billed_note(_visible)
    s["possibly_billed_simulated"] = snapshot.possibly_billed_simulated(all_of=True)
    s["over_budget"] = snapshot.over_budget_note()
    s["followed"] = snapshot.followed_note()
    s["sent_to"] = snapshot.sent_to_note()
    s["simulated"] = snapshot.simulated_note()
    # what this run spent, all of it billed by a simulator (made-up figures): not said paid, as progress says it
    spent, simulated = snapshot.spent_micros, snapshot.spent_simulated_micros
    s["spent_label"] = ("this run spent (simulated)" if spent and simulated >= spent or not spent and snapshot.endpoints
                        and all(there for _, there in snapshot.endpoints) else "this run paid")
    s["billed_above"] = snapshot.billed_above_note()
    s["keys_ignored"] = snapshot.keys_ignored_note()
    s["rerenders_cancelled"] = (rerenders_cancelled_note(snapshot.rerenders_cancelled)
                                if snapshot.rerenders_cancelled else None)
    s["rerenders_failed"] = rerenders_failed_note(len(snapshot.rerenders_failed)) if snapshot.rerenders_failed else None
    s["placeholders_failed"] = (placeholders_failed_note(len(snapshot.placeholders_failed))
                                if snapshot.placeholders_failed else None)
    # the page's chips say what `status --runs` does (its counts): of the done jobs, those the run found cached and
    # those whose video an earlier run made ("made earlier": kept when a re-render here was cancelled or failed,
    # fetched again after it was edited or deleted), though the export's `cached` counts every job cached from a run
    # The done jobs the run was to render again and has not (`rerenders_unsent`) are not among them here: while the
    # run goes on they are to be re-rendered, after it they were not (it stopped before sending them).
    unsent = len(snapshot.rerenders_unsent)
    s["made_earlier"] = max(0, snapshot.made_earlier_count - unsent)
    s["rerenders_unsent"] = unsent
    s["placeholders_left"] = len(snapshot.placeholders_left)
    s["rerenders_waiting"] = run.status == "running" and not run.process_gone()
    s["found_cached"] = snapshot.found_cached
    # "cost when made" is what the videos cost: a job that ended with no video (failed, cancelled, expired) and was
    # billed has its charge said apart, after it ("+$0.35 for cancelled renders, billed, no video")
    made = [j for j in snapshot.jobs if not _no_video(j)]
    s["paid_jobs"] = sum(1 for j in made if j.paid_run is not None)
    s["money"]["cost_usd"] = _money(usd(sum(j.counted_micros or 0 for j in made)))
    s["earlier_attempts"] = _billed_notes(_no_video_note(snapshot), s["earlier_attempts"])
    s["paid_by"], s["paid_by_all"] = _paid_by(_cost_by_paying_run(snapshot), snapshot.other_runs)
    s["counts"] = {state: n for state, n in s["counts"].items() if n}  # the page lists the states it has
    groups: dict[str, int] = {}
    for state, n in s["counts"].items():
        group = GROUPS.get(state, state)
        groups[group] = groups.get(group, 0) + n
    # A run that is not going on (ended, or its process gone) runs nothing: its jobs still at the provider are
    # the ones it left there (their cells say "submitted when the run stopped").
    stopped = run.shown_status != "running"
    s["group_order"] = [(g, groups[g], STOPPED_LABELS.get(g, g) if stopped else g) for g in GROUP_ORDER if groups.get(g)]
    return s


# the states of a job that ended with no video: what it was billed is no video's cost
NO_VIDEO = frozenset({"failed", "rejected", "cancelled", "expired"})


def _no_video(job: JobRecord) -> bool:
    return job.state in NO_VIDEO


def _no_video_note(snapshot: Snapshot) -> str | None:
    """What the header says of the run's jobs that ended with no video and were billed for it: "+$0.35 for
    cancelled renders, billed, no video"; None when there are none."""
    billed = [j for j in snapshot.jobs if _no_video(j) and j.paid_run is not None and j.counted_micros]
    if not billed:
        return None
    one = len(billed) == 1
    states = " or ".join(dict.fromkeys(j.state for j in billed))
    return (f"+{usd_text(sum(j.counted_micros or 0 for j in billed))} for {_an(states) if one else states} "
            f"render{'' if one else 's'}, billed, no video")


def _billed_notes(no_video: str | None, earlier: str | None) -> str | None:
    """The notes after what the jobs cost, in one pair of brackets."""
    if no_video is None:
        return earlier
    return f"({no_video}; {earlier[1:]}" if earlier else f"({no_video})"


def _earlier_attempts_note(snapshot: Snapshot) -> str | None:
    """What the header adds after what the jobs cost for their billed attempts that left no video
    (`cost_failed_attempts_usd`), by what they were: attempts sent again since ("+$0.35 for failed attempts,
    billed and sent again"), and re-renders cut short or failed after the take kept ("+$0.525 for cancelled
    re-renders, billed, the earlier videos kept"); None when there are none."""
    earlier = [b for j in snapshot.jobs for b in snapshot.earlier_billed.get(j.key, ())]
    parts = []
    for rerender in (False, True):
        these = [b for b in earlier if b.rerender == rerender]
        if not these:
            continue
        one = len(these) == 1
        states = " or ".join(dict.fromkeys(b.state for b in these))
        cost = f"+{usd_text(sum(b.micros for b in these))}"
        if rerender:
            parts.append(f"{cost} for {_an(states) if one else states} re-render{'' if one else 's'}, billed, "
                         f"the earlier video{'' if one else 's'} kept")
        else:
            parts.append(f"{cost} for {_an(states) if one else states} attempt{'' if one else 's'}, billed and "
                         "sent again")
    return f"({'; '.join(parts)})" if parts else None


def _an(word: str) -> str:
    """The word with its indefinite article: "a failed", "an expired"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _all_runs(snapshot: Snapshot) -> str | None:
    """What every run of the manifest spent and reserves ("$2.10 / $1.15"), as `status` adds it when it is not
    the run's own: a job of unknown outcome that an earlier run sent stays reserved by that run, not this one,
    though this run's page lists it. None when the run's figures are all there is."""
    mine = (snapshot.spent_micros, snapshot.reserved_micros)
    every = (snapshot.manifest_spent_micros, snapshot.manifest_reserved_micros)
    if every == mine:
        return None
    return " / ".join(_money(micros / 1_000_000) for micros in every)


def _all_runs_label(snapshot: Snapshot) -> str:
    """What the figure of every run is called: on the page of a run before the manifest's latest, the run it is as
    of ("all runs of grid so far, to run 13"), for it counts the runs after the page's own."""
    name = snapshot.run.manifest_name
    latest = snapshot.manifest_latest_run
    if latest is not None and latest != snapshot.run.id:
        return f"all runs of {name} so far, to run {latest}"
    return f"all runs of {name}"


def run_name(run_id: int | str, others: Mapping[int, str]) -> str:
    """A run as a page names it: "run 10", or "run 10 of grid" for a run of another manifest sharing the state."""
    name = others.get(int(run_id))
    return f"run {run_id}" if name is None else f"run {run_id} of {name}"


def _cost_by_paying_run(snapshot: Snapshot) -> dict[str, float | None]:
    """What the run's jobs cost when made (`cost_usd`), split by the run that paid each current take (`paid_run`,
    the export's `paid_in_run`), in run order: the runs in brackets after "these N jobs cost when made" add up to
    it. The export's `cost_by_run` splits the cost with the billed attempts that left no video instead."""
    by_run: dict[int, int] = {}
    for j in snapshot.jobs:
        if j.counted_micros is not None and j.paid_run is not None and not _no_video(j):
            by_run[j.paid_run] = by_run.get(j.paid_run, 0) + j.counted_micros
    return {str(r): usd(m) for r, m in sorted(by_run.items())}


PAID_BY_SHOWN = 5  # the runs the header names of those that paid for a run's jobs; the rest it counts


def _paid_by(by_run: Mapping[str, float | None], others: Mapping[int, str]) -> tuple[str, str | None]:
    """The runs that paid for a run's jobs, as the header names them: "run 1", "run 1: $2.10 · run 2: $0.70",
    "run 10 of grid: $2.55 · run 18: $2.10"; and the whole list when that line names only some of them (None
    otherwise), for its title. A project grown a job at a time over months has a run for each: the line names
    the PAID_BY_SHOWN that paid most, in run order, and the rest as "… 25 more runs: $8.75"."""
    if len(by_run) == 1:
        return run_name(next(iter(by_run)), others), None
    every = [f"{run_name(r, others)}: {_money(usd)}" for r, usd in by_run.items()]
    if len(by_run) <= PAID_BY_SHOWN + 1:  # "1 more run" would be no shorter than naming it
        return " · ".join(every), None
    costs = list(by_run.values())
    top = sorted(sorted(range(len(costs)), key=lambda i: -(costs[i] or 0))[:PAID_BY_SHOWN])
    rest = [usd for i, usd in enumerate(costs) if i not in top]
    known = [usd for usd in rest if usd is not None]
    total = _money(sum(known)) if known else _money(None)
    return " · ".join([*(every[i] for i in top), f"… {len(rest):,} more runs: {total}"]), " · ".join(every)


def _when(ts: float | None) -> dict[str, str] | None:
    """A moment of the header: its text in UTC, saying so (as the page reads without its script), and its ISO form,
    which the page's script writes again in the reader's time zone, as it writes the details view's times."""
    if ts is None:
        return None
    utc = time.gmtime(ts)
    return {"text": time.strftime("%Y-%m-%d %H:%M:%S UTC", utc), "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", utc)}


def _duration(seconds: float | None) -> str:
    return "–" if seconds is None else span_text(seconds)


def _money(value: float | None) -> str:
    """A figure in USD (whole micro-dollars, as the summary gives them) as gridrun shows money (`usd_text`)."""
    return "–" if value is None else usd_text(round(value * 1_000_000))


# --------------------------------------------------------------------------------------------------
# The data the grid script reads


@dataclass(frozen=True, slots=True)
class _Axis:
    id: str
    label: str
    kind: str  # matrix | sweep | repeat
    values: tuple[str | None, ...]  # None (`MISSING`): the jobs that have no such key (the page's "(unset)")


def _label(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def _takes(entries: Sequence[tuple[str, JobRecord]]) -> dict[str, int]:
    """Each key's take of `repeat` (0 for the first): a key is take N when it is another key's with "#N" after
    it and the two jobs share their sweep and matrix values. A matrix value that ends in "#N" ("bug #1")
    makes no take."""
    jobs = dict(entries)
    takes: dict[str, int] = {}
    for key, job in entries:
        m = _REPEAT.match(key)
        first = jobs.get(m.group(1)) if m else None
        same = first is not None and first.sweep == job.sweep and _values_text(first) == _values_text(job)
        takes[key] = int(m.group(2)) if same and m else 0
    return takes


def _values_text(job: JobRecord) -> str:
    return dumps(dict(job.values), sort_keys=True)


_SHORTENED = re.compile(r".{32}…[0-9a-f]{6}", re.DOTALL)  # a value over 40 characters as a key writes it


def _named_by_key(job: JobRecord, missing: Sequence[str], known: Mapping[str, Mapping[str, set[str]]]) -> dict[str, str]:
    """The values of the matrix keys `missing`, which the job's record lacks (it holds the matrix values of the
    latest run that planned the job), that the job's key in an earlier run names: only those that give back that
    key exactly with the record's other values (`jobs.job_key`), for a key is not a list that can be split
    (a value may hold `,name=`; one over 40 characters is shortened). `known`: each key's values on the page as
    a key writes them -> their labels, which name a shortened value in full. A key that cannot be read so, or
    reads two ways, is left out (`(unset)`), never guessed."""
    prefix = f"{job.sweep}/" if job.sweep else ""
    if not missing or not job.key.startswith(prefix):
        return {}
    base = job_key(None, job.values.items(), 0)
    own = {name: _label(job.params[name]) for name in missing if name in job.params}
    found: list[dict[str, str | None]] = []

    def labels(name: str, text: str) -> set[str]:
        out = set(known.get(name, {}).get(text, ()))
        if name in own and format_value(own[name]) == text:
            out.add(own[name])
        if not out and format_value(text) == text and not _SHORTENED.fullmatch(text):
            out.add(text)
        return out

    def walk(i: int, text: str, chosen: dict[str, str | None]) -> None:
        if len(found) > 8:
            return
        if i == len(missing):
            rest = text if text and not text.startswith("#") else "job" + text
            if rest == base or rest.startswith(base + "#") and rest[len(base) + 1 :].isdigit():
                found.append(dict(chosen))
            return
        walk(i + 1, text, chosen)  # that run's key did not name it
        name = missing[i]
        head = f"{name}="
        at = text.find(head)
        while at != -1:
            if at == 0 or text[at - 1] == ",":
                start = at + len(head)
                ends = [e for e in range(start, len(text)) if text[e] in ",#"] + [len(text)]
                for end in ends:
                    named = labels(name, text[start:end])
                    if not named:
                        continue
                    rest = text[end + 1 :] if at == 0 and end < len(text) and text[end] == "," else text[:max(at - 1, 0)] + text[end:]
                    chosen[name] = next(iter(named)) if len(named) == 1 else None
                    walk(i + 1, rest, chosen)
                    del chosen[name]
            at = text.find(head, at + 1)

    walk(0, job.key[len(prefix) :], {})
    out: dict[str, str] = {}
    for name in missing:
        read = {f.get(name, _ABSENT) for f in found}
        if len(read) == 1 and None not in read and _ABSENT not in read:
            out[name] = next(iter(read))  # type: ignore[arg-type]
    return out


def _value_of(jobs: Sequence[JobRecord | None], name: str, named: Callable[[JobRecord], Mapping[str, str]]) -> str | None:
    """Where a job sits on matrix key `name`: its matrix value in the first of `jobs` (each run's record of
    the job, the one that places it first) that has one; else the value the key of that run names (a later
    run dropped the key: `named`); None when neither has it (`_placements` decides)."""
    present = [j for j in jobs if j is not None]
    for job in present:
        if name in job.values:
            return _label(job.values[name])
    for job in present:
        value = named(job).get(name)
        if value is not None:
            return value
    return None


def _placements(entries: Sequence[tuple[str, JobRecord]], pairs: Sequence[Sequence[JobRecord | None]],
                names: Sequence[str]) -> list[dict[str, str | None]]:
    """Each entry's value on each matrix key (`_value_of`). A job without one reads the request's parameter of
    that name only when it is one value shared by every such job (a key that an `include` adds is set by
    `params:`, or the model's default, in the others: `quality: 540p`); a parameter that differs from job to job
    (a prompt rendered from a template) would make an axis of one value a job, so those read `(unset)`
    (`MISSING`, which no value is, not even the text "(unset)")."""
    out: list[dict[str, str | None]] = [{} for _ in entries]
    known: dict[str, dict[str, set[str]]] = {}
    for (_, job), pair in zip(entries, pairs):
        for record in (job, *pair):
            if record is not None:
                for name, value in record.values.items():
                    known.setdefault(name, {}).setdefault(format_value(value), set()).add(_label(value))
    by_key: dict[int, Mapping[str, str]] = {}

    def named(job: JobRecord) -> Mapping[str, str]:
        hit = by_key.get(id(job))
        if hit is None:
            hit = by_key[id(job)] = _named_by_key(job, [n for n in names if n not in job.values], known)
        return hit

    for name in names:
        lacking: list[int] = []
        for i, ((_, job), pair) in enumerate(zip(entries, pairs)):
            value = _value_of([job, *pair], name, named)
            if value is None:
                lacking.append(i)
            else:
                out[i][name] = value
        shared: set[str | None] = set()
        for i in lacking:
            params = [j.params for j in (entries[i][1], *pairs[i]) if j is not None and name in j.params]
            shared.add(MISSING if not params else _label(params[0][name]))
            if len(shared) > 1:
                break
        fill = next(iter(shared)) if len(shared) == 1 else MISSING
        for i in lacking:
            out[i][name] = fill
    return out


def _numbers(entries: Sequence[tuple[str, JobRecord]], pairs: Sequence[Sequence[JobRecord | None]],
             name: str) -> set[str] | None:
    """The labels of matrix key `name`'s values that are numbers (YAML ints and floats) in the jobs' values and
    parameters; None when one is text (the string "1.10" reads as the number 1.1 does, and is not one)."""
    numbers: set[str] = set()
    for (_, job), pair in zip(entries, pairs):
        for record in (job, *pair):
            if record is None:
                continue
            for held in (record.values, record.params):
                if name in held:
                    value = held[name]
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        if held is record.values:
                            return None
                    else:
                        numbers.add(_label(value))
    return numbers


def _ordered(values: Sequence[str | None], numbers: set[str] | None) -> tuple[str | None, ...]:
    """A matrix key's values in order of first appearance, but numbers in numeric order (an `include` that adds
    seed 3 to seeds 1, 2, 4 puts it between 2 and 4) when every value is a number (`numbers`: the labels of the
    values that are); `(unset)` (`MISSING`) after them. Ordered exactly, by the decimal each label writes: two
    integers beyond 2^53 that a float reads as one are in order, not in their order of appearance."""
    shown = [v for v in values if v is not MISSING]
    if not shown or numbers is None or not all(v in numbers for v in shown):
        return tuple(values)
    return (*sorted(shown, key=_exactly), *(v for v in values if v is MISSING))  # type: ignore[arg-type]


def _exactly(label: str) -> tuple[int, Decimal]:
    """The order of a number's label (`_label`: an integer's digits, a float's repr, `inf`), exact: its decimal;
    `nan`, which is in no order, after every other."""
    value = Decimal(label)
    return (1, Decimal(0)) if value.is_nan() else (0, value)


def _axes(runs: Sequence[Snapshot], entries: Sequence[tuple[str, JobRecord]], takes: Mapping[str, int],
          pairs: Sequence[Sequence[JobRecord | None]]) -> tuple[list[_Axis], list[dict[str, str | None]]]:
    names: dict[str, None] = {}
    for snap in runs:
        names.update(dict.fromkeys(snap.run.axes))
    for _, job in entries:
        names.update(dict.fromkeys(job.values))
    axes: list[_Axis] = []
    sweeps = dict.fromkeys(job.sweep or "(main)" for _, job in entries)
    if len(sweeps) > 1:
        axes.append(_Axis(SWEEP_AXIS, "sweep", "sweep", tuple(sweeps)))
    placed = _placements(entries, pairs, list(names))
    for name in names:
        seen = dict.fromkeys(where[name] for where in placed)
        axes.append(_Axis(name, name, "matrix", _ordered(list(seen), _numbers(entries, pairs, name))))
    repeats = sorted(set(takes.values()))
    if len(repeats) > 1:
        axes.append(_Axis(REPEAT_AXIS, "repeat", "repeat", tuple(str(r) for r in repeats)))
    return axes, placed


def _default_view(axes: Sequence[_Axis], items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """X and Y: the two matrix keys with most values (long ones run down the page), but never two that vary
    together (a zip, or a key that follows another): those would make a grid with one card a row. A key that the
    cell already fixes stacks (it adds no card to a cell); the rest group."""
    ranked = sorted(
        (i for i, a in enumerate(axes) if a.kind == "matrix" and len(a.values) > 1),
        key=lambda i: (-len(axes[i].values), i),
    )
    first = ranked[0] if ranked else None
    second = next((i for i in ranked[1:] if not _covary(items, ranked[0], i)), None)
    x = None if first is None else axes[first].id
    y = None if second is None else axes[second].id
    if first is not None and second is not None:
        nx, ny = len(axes[first].values), len(axes[second].values)
        if nx > 12 and ny < nx:
            x, y = y, x
    shown = [i for i in (first, second) if i is not None]
    modes: dict[str, str] = {}
    for i, a in enumerate(axes):
        if a.id in (x, y):
            continue
        fixed = a.kind == "matrix" and any(_determines(items, s, i) for s in shown)
        modes[a.id] = "stack" if a.kind == "repeat" or fixed else "group"
    return {"x": x, "y": y, "modes": modes}


def _determines(items: Sequence[Mapping[str, Any]], a: int, b: int) -> bool:
    """Whether each value of axis `a` comes with one value of axis `b` in the jobs (as the keys of a zip do)."""
    seen: dict[int, int] = {}
    return all(seen.setdefault(it["ix"][a], it["ix"][b]) == it["ix"][b] for it in items)


def _covary(items: Sequence[Mapping[str, Any]], a: int, b: int) -> bool:
    return _determines(items, a, b) or _determines(items, b, a)


_URL_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*")


def _shown_from(path: str, base: str) -> str:
    """`path` as a person reads it from the folder `base`: relative, `/`-separated (absolute where no relative path
    reaches it, another drive)."""
    try:
        return os.path.relpath(path, base).replace(os.sep, "/")
    except ValueError:
        return path


def _rel(path: str, base: str) -> str:
    """`path` as a URL relative to the folder `base` (absolute, normalised)."""
    if path.startswith(base) and path[len(base) : len(base) + 1] == os.sep:
        rel = path[len(base) + 1 :]
    else:
        try:
            rel = os.path.relpath(path, base)
        except ValueError:
            return Path(path).as_uri()
    if os.sep != "/":
        rel = rel.replace(os.sep, "/")
    return rel if _URL_SAFE.fullmatch(rel) else quote(rel)


def _poster(video: str) -> str:
    return files_beside(video)[2]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _job_data(job: JobRecord, base: str, common: Mapping[str, Any], rerun_error: str | None = None,
              made_earlier: bool = False, rerun_cancelled: bool = False, unsent: bool = False,
              earlier: Sequence[EarlierBilled] = (), params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A job's entry; `params`: its parameters as the page shows them (`_shown_params`), its own by default;
    `rerun_error`: the error of the run's re-render of it (--force) that failed, which left it
    done as it was; `made_earlier`: a job marked cached whose re-render the run sent or saw cancelled or failed, its
    video made earlier and kept, not found cached by the run (`Snapshot.made_earlier`); `rerun_cancelled`: the run's
    re-render of it (--force, retry) was cancelled at the provider, which left it done as it was
    (`Snapshot.rerenders_cancelled_keys`); `earlier`: its billed attempts other than its current one, which its cell
    shows beside its cost (`Snapshot.earlier_billed`)."""
    d: dict[str, Any] = {
        "state": job.state,
        "hash": job.hash,
        "est": job.cost_estimate_micros,
        "cost": job.cost_micros,
        "att": job.attempts,
        "p": {k: _exact(v) for k, v in (job.params if params is None else params).items()
              if k not in common or common[k] != v},
    }
    optional = {
        "err": job.error,
        "rs": _round(job.render_seconds),
        "dur": job.duration,
        "sha": job.sha256,
        "pid": job.provider_id,
        "sub": _round(job.submitted_at),
        "cmp": _round(job.completed_at),
        "dl": _round(job.downloaded_at),
        "end": _round(job.ended_at),  # of a job that ended without its video (failed, rejected, ...): when it did
        "cached": job.cached_from_run,
        "paid": job.paid_run,
        # the run that sent it, where another than the one that paid (a killed run's render another collected)
        "sent": job.sent_run if job.paid_run is not None and job.sent_run != job.paid_run else None,
        "rep": job.cost_reported_micros,        # the provider's figure as reported, beside `cost`, the one counted
        "doubt": True if job.cost_doubted else None,
        "rerr": rerun_error,                    # its re-render in this run failed: done as before, its video kept
        "kept": True if made_earlier else None,  # of `cached`: made earlier, kept when its re-render here did not
        "rcan": True if rerun_cancelled else None,  # its re-render in this run was cancelled: done as before
        "unsent": True if unsent else None,  # to be re-rendered by this run, not sent (yet): done as before
        # what its earlier billed attempts cost (a render failed with a charge, then sent again), how many, and
        # whether each of them failed
        "xa": sum(b.micros for b in earlier) if earlier else None,
        "xn": len(earlier) if earlier else None,
        "xf": True if earlier and all(b.state == "failed" for b in earlier) else None,
        # each of them: how it ended, the run its charge counts for, and 1 for a re-render sent after the current
        # take (the job left as it was), 0 for an attempt before it, sent again
        "xk": [[b.state, b.run, int(b.rerender)] for b in earlier] if earlier else None,
    }
    d.update((k, v) for k, v in optional.items() if v is not None)
    if job.size:
        d["w"], d["h"] = job.size
    if job.replaced:
        d["replaced"] = True  # a later render took its video's place, and nothing kept it: no link
        if job.missing:
            d["missing"] = True  # no file at all at its path: deleted, not replaced or edited
        elif job.later_take:
            d["later"] = True  # a later render is the job's take now: no run fetches this one back
    elif job.state == "done" and job.output_path and (unread := unreadable_why(job.output_path)) is not None:
        # there, but this user may not read it (a teammate's file): no link, which would show as missing
        d["unread"] = f"{_shown_from(job.output_path, base)} ({unread})"
    elif job.state == "done" and job.output_path:
        d["src"] = _rel(job.output_path, base)
        d["poster"] = _rel(_poster(job.output_path), base)
    elif job.earlier is not None:
        # re-rendered (--force, retry), its earlier video still at its path: the job's take until the new one
        # arrives, shown (with what it cost and the run that made it) as the one being re-rendered; on an earlier
        # run's page, the take it had when the run stopped, kept aside since a later one replaced it, or not kept
        take = job.earlier
        d["rerender"] = {k: v for k, v in (("cost", take.cost_micros), ("run", take.run)) if v is not None}
        if not take.kept:
            d["rerender"]["gone"] = True
        else:
            d["src"] = _rel(take.output_path, base)
            d["poster"] = _rel(_poster(take.output_path), base)
            if take.output_path != job.output_path:
                d["rerender"]["aside"] = True
    return d


JS_SAFE_INT = 2**53 - 1  # the largest integer a page's script holds exactly (Number.MAX_SAFE_INTEGER)


def _unsafe(value: Any) -> bool:
    """Whether `value` is, or holds, an integer a page's script would round (beyond ±JS_SAFE_INT)."""
    if isinstance(value, int):
        return not isinstance(value, bool) and abs(value) > JS_SAFE_INT
    if isinstance(value, (list, tuple)):
        return any(_unsafe(v) for v in value)
    if isinstance(value, dict):
        return any(_unsafe(v) for v in value.values())
    return False


def _exact(value: Any) -> Any:
    """A parameter's value as the page data holds it: as it is, but for one that is or holds an integer beyond
    ±JS_SAFE_INT (a 64-bit seed or id), which the script would read rounded: then its text (the integer in
    decimal; a list or mapping as compact JSON, as the page writes one), which the page shows as it is."""
    if not _unsafe(value):
        return value
    return str(value) if isinstance(value, int) else dumps(value, ensure_ascii=False, separators=(",", ":"))


def _image_shown(item: Any, folders: Sequence[str]) -> Any:
    """A local input image, held by its absolute path, as a page shows it: by its place in the folder of the
    manifest that sent it, the first of `folders` (`Snapshot.manifest_folders`) it is inside ("imgs/fox.png"), else
    relative to the folder it is nearest, the one it takes the fewest steps up from, the first of those
    ("../shared/fox.png"): an image beside the project, sent from where the project was before it moved (with its
    sibling folders), reads as the manifest writes it, as one sent since; never the absolute path of the machine
    that ran it. A URL, a data URI, anything else as it is."""
    if not isinstance(item, str) or not folders or not os.path.isabs(item):
        return item
    for folder in folders:
        inner = within(item, folder)
        if inner is not None:
            return inner
    best: tuple[int, str] | None = None
    for folder in folders:
        try:
            rel = Path(os.path.relpath(item, folder))
        except ValueError:  # on another drive (Windows): nothing relative to say
            continue
        ups = rel.parts.count("..")
        if best is None or ups < best[0]:
            best = (ups, rel.as_posix())
    return item if best is None else best[1]


def _shown_params(params: Mapping[str, Any], folders: Sequence[str]) -> Mapping[str, Any]:
    """A job's parameters as a page shows them: its local input images relative to its manifest's folder
    (`_image_shown`); `params` itself where it sends none."""
    if not folders or not any(name in params for name in IMAGE_PARAMS):
        return params
    out = dict(params)
    for name in IMAGE_PARAMS:
        value = out.get(name)
        if value is not None:
            out[name] = [_image_shown(v, folders) for v in value] if isinstance(value, list) \
                else _image_shown(value, folders)
    return out


def _common_params(shown: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The parameters every job has alike, of their parameters as the page shows them (`_shown_params`)."""
    it = iter(shown)
    first = next(it, None)
    if first is None:
        return {}
    common = dict(first)
    for params in it:
        for k in [k for k, v in common.items() if k not in params or params[k] != v]:
            del common[k]
        if not common:
            break
    return common


def _param_order(jobs: Iterable[JobRecord]) -> list[str]:
    order: dict[str, None] = {}
    for job in jobs:
        for k in job.params:
            if k not in order:
                order[k] = None
    return list(order)


def _paid(job: JobRecord, run_id: int) -> int:
    """What run `run_id` paid for the job: its current attempt's cost (`counted_micros`) when that run paid it
    (`paid_run`, the export's `paid_in_run`), else $0: a take cached from an earlier run, or one another run
    paid for, cost this run nothing; so did a job never sent, in flight, or ended without a charge. A compare
    sets what each run paid side by side, never an estimate of a job nobody paid for against a figure paid."""
    return (job.counted_micros or 0) if job.paid_run == run_id else 0


def _renamed(by_key: Sequence[Mapping[str, JobRecord]]) -> dict[str, str]:
    """Run A's key -> run B's key of the jobs the two runs have under different keys: a job is its hash, a key
    only its name (as `plan.diff` tells a renamed job from one dropped). Jobs whose key both runs have stay
    paired by it."""
    a, b = by_key
    left: dict[str, str] = {}
    for key, job in b.items():
        if key not in a:
            left.setdefault(job.hash, key)
    return {key: left.pop(job.hash) for key, job in a.items() if key not in b and job.hash in left}


_ABSENT = object()


def _coerced(value: Any) -> Any:
    """A matrix value as the plan coerced it, for comparing: 1, 1.0, "1" and true are four values (as their JSON
    tells them apart), a mapping or list its JSON; the common scalars without writing any."""
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return (kind.__name__, value)
    if value is None:
        return ("null",)
    if kind is float:
        return ("float", repr(value))
    return ("json", dumps(value, sort_keys=True))


def _axis_names(snapshot: Snapshot) -> set[str]:
    """The matrix keys of a run: those it recorded, and any its jobs hold (an `include` adds keys of its own)."""
    names = set(snapshot.run.axes)
    for job in snapshot.jobs:
        names.update(job.values)
    return names


def _pair_rest(runs: Sequence[Snapshot], by_key: Sequence[Mapping[str, JobRecord]], renamed: Mapping[str, str],
               ) -> tuple[dict[str, tuple[str, str]], list[dict[str, tuple[int, int]]]]:
    """The jobs that neither a key nor a hash pairs (an axis added or dropped between the runs renames every job
    and, used by the prompt, changes its hash), paired as likely counterparts, never as the same job: first a job of
    run A and one of run B that agree on every axis both runs have (matrix values compared as the plan coerced
    them: 1, "1" and true are three values; the sweep and the take of `repeat` too), then, of those left, two
    that wrote one output path; each only where it is one to one. Returns run A's key -> (run B's key, "axes" |
    "path"), and each run's jobs left unpaired for matching several of the other's on the shared axes -> how many
    jobs of run A and of run B match there: those are never guessed."""
    a, b = by_key
    taken = set(renamed.values())
    left = ([j for k, j in a.items() if k not in b and k not in renamed],
            [j for k, j in b.items() if k not in a and k not in taken])
    ambiguous: list[dict[str, tuple[int, int]]] = [{}, {}]
    if not left[0] or not left[1]:
        return {}, ambiguous
    names = sorted(_axis_names(runs[0]) & _axis_names(runs[1]))
    groups: list[dict[tuple[Any, ...], list[JobRecord]]] = [{}, {}]
    for r, jobs in enumerate(left):
        takes = _takes(list(by_key[r].items())) if any(_REPEAT.match(j.key) for j in jobs) else {}
        for job in jobs:
            sig = (job.sweep or "", takes.get(job.key, 0),
                   *(_coerced(v) if (v := job.values.get(n, _ABSENT)) is not _ABSENT else None for n in names))
            groups[r].setdefault(sig, []).append(job)
    pairs: dict[str, tuple[str, str]] = {}
    for sig, mine in groups[0].items():
        theirs = groups[1].get(sig)
        if not theirs:
            continue
        if len(mine) == 1 and len(theirs) == 1:
            pairs[mine[0].key] = (theirs[0].key, "axes")
            continue
        for r, jobs in enumerate((mine, theirs)):
            for job in jobs:
                ambiguous[r][job.key] = (len(mine), len(theirs))
    paired_b = {k for k, _ in pairs.values()}
    paths: list[dict[str, list[JobRecord]]] = [{}, {}]
    for r, jobs in enumerate(left):
        for job in jobs:
            path = job.written_path or job.output_path  # the path the run wrote, not where a later run set it aside
            if path and job.key not in (pairs if r == 0 else paired_b):
                paths[r].setdefault(path, []).append(job)
    for path, mine in paths[0].items():
        theirs = paths[1].get(path)
        if theirs and len(mine) == 1 and len(theirs) == 1:
            pairs[mine[0].key] = (theirs[0].key, "path")
            ambiguous[0].pop(mine[0].key, None)
            ambiguous[1].pop(theirs[0].key, None)
    return pairs, ambiguous


def _axis_differences(a: JobRecord, b: JobRecord) -> dict[str, list[str | None]]:
    """The matrix keys on which two jobs differ, each with its label in each (None: the job has no such key)."""
    out: dict[str, list[str | None]] = {}
    for name in dict.fromkeys([*a.values, *b.values]):
        x, y = a.values.get(name, _ABSENT), b.values.get(name, _ABSENT)
        if x is _ABSENT or y is _ABSENT or _coerced(x) != _coerced(y):
            out[name] = [None if v is _ABSENT else _label(v) for v in (x, y)]
    return out


def _page_data(
    runs: Sequence[Snapshot], *, title: str, base_dir: Path, memo: ReportMemo | None = None,
    refresh: float | None = None, digests: Digests | None = None, stamp: str | None = None,
) -> tuple[dict[str, Any], list[str] | None]:
    """The page's data, and with `memo` (one run only: a compare page edits its entries) the JSON text
    of each of its items: the entries of jobs that did not change since the memo's last build, and their
    texts, are the ones it kept. `digests`: the videos' digests remembered, for the files a compare checks."""
    by_key: list[dict[str, JobRecord]] = [{j.key: j for j in s.jobs} for s in runs]
    # each run's re-renders of done jobs that failed, leaving them done as they were: key -> the error
    rerun_failed: list[dict[str, str]] = [dict(s.rerenders_failed) for s in runs]
    # and those cancelled at the provider (`gridrun cancel`, or found so), leaving them done as they were
    rerun_cancelled: list[frozenset[str]] = [frozenset(s.rerenders_cancelled_keys) for s in runs]
    made_earlier: list[frozenset[str]] = [frozenset(s.made_earlier) for s in runs]
    unsent: list[frozenset[str]] = [frozenset(s.rerenders_unsent) for s in runs]
    renamed = _renamed(by_key) if len(runs) == 2 else {}
    # the jobs neither key nor hash pairs: run A's key -> (run B's, how they were paired), and those left unpaired
    # for matching several jobs of the other run
    matched, ambiguous = _pair_rest(runs, by_key, renamed) if len(runs) == 2 else ({}, [{}, {}])
    keys: dict[str, None] = {}
    for s in runs:
        keys.update(dict.fromkeys(j.key for j in s.jobs))
    # Each entry: the key it is shown under, the job that places it, and each run's job. A job renamed between
    # the runs is one entry, under run B's key.
    entries: list[tuple[str, JobRecord]] = []
    pairs: list[list[JobRecord | None]] = []
    was: dict[str, str] = {}
    paired_by: dict[str, str] = {}  # run B's key of a pair neither key nor hash made -> "axes" | "path"
    taken = set(renamed.values()) | {k for k, _ in matched.values()}
    for key in keys:
        if key in taken:
            continue
        if key in renamed or key in matched:
            b_key = renamed[key] if key in renamed else matched[key][0]
            a_job, b_job = by_key[0][key], by_key[1][b_key]
            entries.append((b_job.key, a_job))
            pairs.append([a_job, b_job])
            was[b_job.key] = key
            if key in matched:
                paired_by[b_job.key] = matched[key][1]
            continue
        pairs.append([m.get(key) for m in by_key])
        entries.append((key, next(m[key] for m in by_key if key in m)))
    takes = _takes(entries)
    axes, placed = _axes(runs, entries, takes, pairs)
    base = os.path.abspath(base_dir)
    # each job's parameters as the page shows them (its local input images relative to its manifest's folder)
    shown: dict[int, Mapping[str, Any]] = {id(j): _shown_params(j.params, s.manifest_folders) for s in runs
                                           for j in s.jobs}
    common = _common_params(shown.values())
    index = [{v: i for i, v in enumerate(a.values)} for a in axes]
    if len(runs) != 1:
        memo = None
    texts: list[str] = []
    if memo is not None:
        memo.use((base, common, tuple(axes), runs[0].manifest_folders))

    items: list[dict[str, Any]] = []
    n_only = [0, 0]
    n_diff = 0
    n_by = {"axes": 0, "path": 0}
    n_amb = [0, 0]
    for (key, job), pair, where in zip(entries, pairs, placed):
        if memo is not None:
            hit = memo.item(job)
            if hit is not None:
                items.append(hit[0])
                texts.append(hit[1])
                continue
        ix: list[int] = []
        for a, lookup in zip(axes, index):
            if a.kind == "sweep":
                ix.append(lookup[job.sweep or "(main)"])
            elif a.kind == "repeat":
                ix.append(lookup[str(takes[key])])
            else:
                ix.append(lookup[where[a.id]])
        item: dict[str, Any] = {
            "key": key,
            "ix": ix,
            "jobs": [None if j is None else _job_data(j, base, common, failed.get(j.key), j.key in kept,
                                                      j.key in cancelled, j.key in waiting,
                                                      snap.earlier_billed.get(j.key, ()), shown[id(j)])
                     for j, failed, kept, cancelled, waiting, snap in zip(pair, rerun_failed, made_earlier,
                                                                          rerun_cancelled, unsent, runs)],
        }
        if key in was:
            item["was"] = was[key]  # run A's key of the job (its hash in both runs, unless `by` says otherwise)
        by = paired_by.get(key)
        if by is not None:
            item["by"] = by  # not one job: two the runs' shared axes ("axes") or output path ("path") pair
        if job.sweep:
            item["sweep"] = job.sweep
        if len(runs) == 2:
            a_job, b_job = pair
            if a_job is None or b_job is None:
                item["only"] = "a" if b_job is None else "b"
                n_only[0 if b_job is None else 1] += 1
                side = 0 if b_job is None else 1
                several = ambiguous[side].get(key)
                if several:
                    item["amb"] = several  # how many jobs of run A and of run B match it on their shared axes
                    n_amb[side] += 1
            else:
                a_params, b_params = shown[id(a_job)], shown[id(b_job)]
                diff = [k for k in dict.fromkeys([*a_params, *b_params])
                        if a_params.get(k, _ABSENT) != b_params.get(k, _ABSENT)]
                if by is not None:
                    n_by[by] += 1
                    # the axes on which two jobs paired as counterparts differ (one run's axis the other lacks),
                    # named first, each with its value in each run (None: the run has no such axis for the job)
                    moved = _axis_differences(a_job, b_job)
                    if moved:
                        item["av"] = moved
                        diff = list(dict.fromkeys([*moved, *diff]))
                if diff:
                    item["diff"] = diff
                dcost = _paid(b_job, runs[1].run.id) - _paid(a_job, runs[0].run.id)
                if dcost:
                    item["dcost"] = dcost
                # a change of outcome (pending -> done, submitted -> unknown) is a difference, whatever it cost
                dstate = a_job.state != b_job.state
                if dstate:
                    item["dstate"] = True
                # another take: run B's video is another render of the job than run A's (`run --force`, paid again)
                take = (a_job.hash == b_job.hash and a_job.state == b_job.state == "done" and any(
                    x is not None and y is not None and x != y
                    for x, y in ((a_job.sha256, b_job.sha256), (a_job.provider_id, b_job.provider_id))))
                if take:
                    item["take"] = True
                # One run cached the very video the other paid for: what each paid differs, the job does not (a
                # compare answers which jobs an edit changed; "Δ paid" still says who paid).
                same = dcost and not (diff or dstate or take) and a_job.state == b_job.state == "done" \
                    and a_job.hash == b_job.hash and a_job.sha256 is not None and a_job.sha256 == b_job.sha256
                if same:
                    item["same"] = True
                if diff or (dcost and not same) or dstate or take:
                    n_diff += 1
                if (a_job.output_path and a_job.output_path == b_job.output_path and a_job.sha256 and b_job.sha256
                        and a_job.sha256 != b_job.sha256 and not any(  # an earlier run's take nothing kept
                            j.replaced and s.run.id != s.manifest_latest_run for j, s in zip(pair, runs))):
                    # Both runs wrote one path; the file there holds one take at most, whichever run downloaded it
                    # last (a take cached since is put back there): the other is not linked. (An earlier run's video
                    # that a later render of its job replaced is linked where it is kept, or says it is not.)
                    gone = [r for r, j in enumerate((a_job, b_job))
                            if not holds_take(j.output_path, j.hash, j.sha256, digests)]
                    if len(gone) == 1:
                        item["overwritten"] = gone[0]
                    for r in gone:
                        stale = item["jobs"][r]
                        stale.pop("src", None)
                        stale.pop("poster", None)
                        if len(gone) == 2:
                            stale["replaced"] = True  # neither's: edited or replaced by hand since
        items.append(item)
        if memo is not None:
            texts.append(memo.keep(job, item))

    live = runs[0].run.status == "running" and not runs[0].run.process_gone()  # a killed run is not live
    data: dict[str, Any] = {
        "version": DATA_VERSION,
        "title": title,
        "runs": [_run_data(s) for s in runs],
        # the runs of other manifests that paid for or made jobs of the page: id -> that manifest's name
        "otherRuns": {str(r): name for s in runs for r, name in sorted(s.other_runs.items())},
        "live": live,
        "refresh": round(refresh, 1) if live and refresh is not None else None,
        # the snapshot's stamp file, which the live page loads to tell whether the run wrote a newer one
        "stamp": stamp if live else None,
        "axes": [{"id": a.id, "label": a.label, "kind": a.kind, "values": list(a.values)} for a in axes],
        "view": _default_view(axes, items),
        "common": {k: _exact(v) for k, v in common.items()},
        "paramOrder": _param_order(j for s in runs for j in s.jobs),
        "groups": dict(GROUPS),
        "items": items,
    }
    if len(runs) == 2:
        data["compare"] = {
            "both": len(entries) - n_only[0] - n_only[1] - len(paired_by),
            "renamed": len(was) - len(paired_by),
            "onlyA": n_only[0],
            "onlyB": n_only[1],
            "differ": n_diff,
        }
        # the pairs of counterparts (not one job) and the jobs left unpaired for matching several, where there are
        if n_by["axes"]:
            data["compare"]["byAxes"] = n_by["axes"]
        if n_by["path"]:
            data["compare"]["byPath"] = n_by["path"]
        if n_amb[0] or n_amb[1]:
            data["compare"]["ambiguous"] = n_amb
    return data, (None if memo is None else texts)


def _data_text(data: dict[str, Any], texts: list[str] | None) -> str:
    """The page data as JSON for its <script> element; the items' texts, when given (the page of one run,
    whose data ends with its items), are put in as they were kept."""
    if texts is None:
        return _json_text(data)
    head = _json_text({k: v for k, v in data.items() if k != "items"})
    return f'{head[:-1]},"items":[{",".join(texts)}]}}'


def _run_data(snapshot: Snapshot) -> dict[str, Any]:
    run = snapshot.run
    return {
        "id": run.id,
        "manifest": run.manifest_name,
        "provider": run.provider,
        "model": run.model,
        "status": run.shown_status,
        "started": run.started_at,
        "ended": run.ended_at,
        "taken": round(snapshot.taken_at, 3),
        # the manifest's latest run: a video of its missing is fetched again by `gridrun run`
        "latest": snapshot.run.id == snapshot.manifest_latest_run,
    }


# --------------------------------------------------------------------------------------------------
# Posters and writing


_local = threading.local()


def _make_poster(video: str | Path, poster: str | Path) -> bool:
    from av.error import FFmpegError
    from av.video.reformatter import VideoReformatter
    from PIL import Image

    from .firstframe import first_frame

    try:
        frame = first_frame(video)
        if frame is None:
            return False
        width, height = poster_size(frame.width, frame.height)
        # A reformatter kept per thread keeps its scaler: building one per frame costs more than scaling.
        reformatter = getattr(_local, "reformatter", None) or VideoReformatter()
        _local.reformatter = reformatter
        # Four bytes a pixel, as Pillow keeps RGB: the image maps the frame's plane instead of unpacking a
        # copy of it (about 0.1 ms of the 0.7 a poster costs), and the JPEG is the same.
        rgb = reformatter.reformat(frame, width=width, height=height, format="rgb0")
        plane = rgb.planes[0]
        image = Image.frombuffer("RGBX", (rgb.width, rgb.height), plane, "raw", "RGBX", plane.line_size, 1)
    except (FFmpegError, OSError, StopIteration, IndexError, ValueError):
        return False
    jpeg = io.BytesIO()
    # The mark tells a run that the file is gridrun's poster, not an image of the user's to keep before
    # writing over it (`outputs.foreign_poster`).
    image.save(jpeg, format="JPEG", quality=82, comment=POSTER_MARK)
    try:
        # Synced before its rename, as a video is: a new file renamed into place unsynced may come back empty
        # after a power cut. The caller syncs each folder once, after all its posters (`_sync_folders`).
        atomic_write(poster, jpeg.getbuffer(), sync_folder_after=False)
    except OSError as exc:
        raise PosterNotWritten(poster, exc, _drop_stale(video, poster)) from exc
    return True


class PosterNotWritten(Exception):
    """A poster could not be written (`exc`: no space left, a file that cannot be replaced); `stale`: an earlier
    take's poster there, older than the video, is left standing (it could not be removed either)."""

    def __init__(self, poster: str | Path, exc: OSError, stale: bool) -> None:
        super().__init__(f"{poster}: {exc}")
        self.poster, self.exc, self.stale = os.fspath(poster), exc, stale


def _drop_stale(video: str | Path, poster: str | Path) -> bool:
    """Remove the poster at `poster` where it is older than `video` (an earlier take's, which the report would
    show over the new video; with none there, it shows the video's own first frame). True when such a poster is
    left standing: it could not be removed."""
    try:
        if os.stat(poster).st_mtime >= os.stat(video).st_mtime:
            return False
        os.unlink(poster)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return False


def posters_not_written(failed: Sequence[PosterNotWritten]) -> str:
    """The warning for the posters that could not be written (`failed`), once for them all: the first, why, what
    to do, and how many; their videos are saved, and the report shows them without a poster, or names the
    earlier take's posters left standing."""
    first = failed[0]
    n = len(failed)
    more = f" (and {n - 1:,} more)" if n > 1 else ""
    stale = [f.poster for f in failed if f.stale]
    if not stale:
        shown = ("its video is saved, and the report shows the video's own first frame" if n == 1 else
                 "their videos are saved, and the report shows the videos' own first frames")
    else:
        them = "it" if n == 1 else f"{len(stale):,} of them"
        shown = (f"{'the video is' if n == 1 else 'the videos are'} saved, but an earlier take's poster is left "
                 f"beside {them}, which the report shows over the new video: remove {stale[0]}"
                 + (f" and the {len(stale) - 1:,} others" if len(stale) > 1 else ""))
    return f"{POSTERS_NOT_WRITTEN}{write_problem(first.exc, then='`gridrun report` writes it', folder=os.path.dirname(first.poster))}{more}; {shown}"


def _sync_folders(posters: Iterable[str]) -> None:
    """fsync each folder holding one of `posters`, once: their names then outlive a power cut."""
    for poster in {os.path.dirname(p): p for p in posters}.values():
        sync_folder(poster)


def ensure_posters(snapshot: Snapshot, within: Path | None = None, digests: Digests | None = None) -> None:
    """Write a JPEG poster (the first frame) beside each finished video that lacks an up-to-date one, but never
    over an image with no poster mark that no copy under .runs/superseded/ keeps (`_replaceable`). A poster
    there that is no image at all (`broken_image`: empty, as a power cut leaves a new file, or garbled) is
    written again whatever its age, a non-empty one kept first under .runs/superseded/ (`keep_broken_poster`).
    `within`: the output folder the manifest now names, outside which nothing is written (an earlier run's video
    that only the project a copy came from still holds gets no poster from the copy). `digests` (a state folder's)
    remembers which posters are images while they stay unchanged (`broken_poster`), which the caller saves."""
    todo: list[tuple[str, str]] = []
    superseded = superseded_dir(snapshot.run.outputs_dir)
    inside = _inside(within)
    for job in snapshot.jobs:
        # a job being re-rendered shows its earlier video (`earlier`), still at its path
        video = (job.output_path if job.state == "done"
                 else job.earlier.output_path if job.earlier and job.earlier.kept else None)
        if not video or job.replaced or not inside(video) or unreadable_why(video) is not None:
            continue
        poster = _poster(video)
        try:
            vstat = os.stat(video)
        except OSError:
            continue
        try:
            pstat = os.stat(poster)
        except OSError:
            pstat = None  # no poster yet
        if pstat is not None and broken_poster(poster, pstat, digests):
            if pstat.st_size:
                try:
                    keep_broken_poster(Path(video), superseded / job.hash[:16])
                except OSError:
                    continue  # not kept: left as it is
        elif pstat is not None and (pstat.st_mtime >= vstat.st_mtime
                                    or not _replaceable(poster, superseded / job.hash[:16])):
            continue
        todo.append((video, poster))
    failed: list[PosterNotWritten] = []

    def make(pair: tuple[str, str]) -> bool:
        try:
            return _make_poster(*pair)
        except PosterNotWritten as exc:
            failed.append(exc)
            return False

    if len(todo) < 4:
        made = [pair[1] for pair in todo if make(pair)]
    else:
        # Decoding releases the GIL: a few threads cut a first report of a big finished run by half or more.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            made = [pair[1] for pair, ok in zip(todo, pool.map(make, todo)) if ok]
    _sync_folders(made)
    if failed:
        tell(posters_not_written(sorted(failed, key=lambda f: f.poster)), "warning")


def _inside(folder: Path | None) -> Callable[[str], bool]:
    """Whether a path is in `folder` (every path when None), links resolved. The folder holding a path is resolved
    once for all the paths in it (the videos of a run share a few folders): a path is then its folder's resolved
    path and its own name, unless that name is a link, resolved whole. (Resolving each of 10,000 videos' paths
    whole took ~0.5 s of a run's final report.)"""
    if folder is None:
        return lambda _: True
    try:
        root = folder.resolve()
    except (OSError, RuntimeError):
        return lambda _: False
    resolved: dict[str, Path] = {}

    def whole(path: str) -> bool:
        try:
            return Path(path).resolve().is_relative_to(root)
        except (OSError, RuntimeError):
            return False

    def inside(path: str) -> bool:
        parent, name = os.path.split(path)
        if not parent or name in ("", ".", "..") or os.path.islink(path):
            return whole(path)
        at = resolved.get(parent)
        if at is None:
            try:
                at = resolved[parent] = Path(parent).resolve()
            except (OSError, RuntimeError):
                return False
        return (at / name).is_relative_to(root)
    return inside


def _replaceable(poster: str, folder: Path) -> bool:
    """The file at `poster`, older than its video, may be written over: it is gridrun's (`gridrun_poster`), or a
    copy of it is kept in `folder`, the job's under .runs/superseded/ (a run kept it as it put the video
    there). Otherwise it is an image of the user's, or an earlier version's poster, that a report (which
    records nothing, and may be reading a state it cannot write) leaves as it is: the grid shows it as the
    video's poster until a run keeps it."""
    return gridrun_poster(Path(poster)) or poster_kept(Path(poster), folder)


def make_posters(videos: Iterable[str | Path]) -> None:
    """Write the poster of each video, one after the other (for a worker that keeps up with downloads): over
    what is there, which the run kept first where it has no poster mark (`outputs.keep_file`)."""
    made = []
    failed: list[PosterNotWritten] = []
    for video in videos:
        video = os.fspath(video)
        try:
            if _make_poster(video, _poster(video)):
                made.append(_poster(video))
        except PosterNotWritten as exc:
            failed.append(exc)
    _sync_folders(made)
    if failed:
        raise PostersNotWritten(failed)


class PostersNotWritten(Exception):
    """Posters of a batch could not be written (`failed`): `str()` says it (`posters_not_written`)."""

    def __init__(self, failed: Sequence[PosterNotWritten]) -> None:
        super().__init__(posters_not_written(failed))
        self.failed = list(failed)

    def said(self, failed: Sequence[PosterNotWritten]) -> str:
        """The warning of the posters `failed` (this batch's among them): once for a run's batches."""
        return posters_not_written(failed)


def write_report(
    store: Store,
    *,
    run_id: int | None = None,
    manifest_name: str | None = None,
    compare: tuple[int, int] | None = None,
    path: Path | None = None,
    posters: bool = True,
    memo: ReportMemo | None = None,
    home: Path | None = None,
    refresh: float | None = None,
) -> Path:
    """Build the report of a run (the latest of `manifest_name` by default) and write it atomically.

    Default path: `report.html` in the run's outputs folder, `report-run-N.html` beside it for a run before
    the manifest's latest (`files_of`); with `compare=(A, B)`, `compare-A-B.html` in run A's outputs folder.
    Returns the path written. `memo`, kept between the builds of one run's report, makes each rebuild decode
    and lay out only the jobs that changed. `home`, the output folder the manifest now names: a default path
    is written only there. Run ids given with `manifest_name` must be runs of that manifest. `refresh`: as `render`.
    A page never goes back in time: of a run going on when its snapshot was read, but ended (or its process gone) by
    the time it is written, it is built again from the state as it is then, whether that is seen before or just
    after its write (where the run's final page may have come between); of a run going on, it is not written where
    the page there holds a later snapshot (its stamp says), written by the run or another `gridrun report`.

    :raises NotRecordedError: no such run, or one of another manifest.
    :raises StateError: the run's folder is gone, or is not `home` (a copied or moved project).
    """
    own = path is None  # a path of gridrun's choosing, in the output folder: a file it did not write there is kept
    if compare is not None:
        with unreadable_videos() as unread:  # as below
            a, b = (_as_of_state(store, store.snapshot(r, manifest_name=manifest_name)) for r in compare)
            if path is None:  # run A's folder; else B's, else the latest run's (a moved project: a run since made it)
                latest = store.latest_run(manifest_name or a.run.manifest_name)
                folder = earlier_folder((a.run, b.run), latest, home)
                if folder is not None:
                    path = folder / f"compare-{a.run.id}-{b.run.id}.html"
            written = write_compare_report(a, b, path=path, within=home, digests=store.digests, own=own)
        tell_unreadable(unread, "report", a, b)
        return written
    if run_id is None:
        run_id = chosen_run(store, manifest_name, home, "report")
    given, told = path, False
    for build in range(3):  # a page read as the run went on, which has ended since, is built again from the state
        path, last = given, build == 2
        # a teammate's video this user may not read is shown as not readable here, not as missing
        with unreadable_videos() as unread:
            snapshot = _as_of_state(store, store.snapshot(run_id, manifest_name=manifest_name,
                                                          reuse=None if memo is None else memo.records))
            live = _going_on(snapshot.run)
            if path is None:
                folder, suffix = files_of(store, snapshot, home)
                path = folder / f"report{suffix}.html"
            target = Path(path)
            stamp = stamp_path(target) if own else None
            try:
                if posters:
                    ensure_posters(snapshot, within=home, digests=store.digests)
                    store.digests.save()
                manifest_text = store.manifest_copy(snapshot.run.id)
                description = _description(manifest_text) if memo is None else memo.description(manifest_text)
                page = render(snapshot, base_dir=target.parent, memo=memo, description=description, refresh=refresh,
                              stamp=None if stamp is None else stamp.relative_to(target.parent).as_posix())
            except (Exception, KeyboardInterrupt) as exc:
                _not_written(stamp, snapshot, target, exc, earlier=own and bool(suffix))
                raise
        if live and not last and _ended_since(store, snapshot.run.id):
            continue
        try:
            if not told:
                tell_unreadable(unread, "report", snapshot)
                told = True
            if live and own and _newer_there(target, snapshot.taken_at):
                return target  # a page of the run read later is there already: it stays
            if own:
                keep_foreign(target, target.parent)
            atomic_write(target, page, durable=False)
        except (Exception, KeyboardInterrupt) as exc:
            _not_written(stamp, snapshot, target, exc, earlier=own and bool(suffix))
            raise
        if stamp is not None:  # after the page: a stamp never names a snapshot the page does not hold yet
            keep_out_of_version_control(stamp.parent, RUNS_GITIGNORE)  # a `.runs/` an earlier gridrun made
            atomic_write(stamp, _stamp_text(snapshot.taken_at), durable=False)
        # the run ended between the look above and this write: its final page may be the one just written over
        if not (live and not last and _ended_since(store, snapshot.run.id)):
            break
    return target


def _going_on(run: RunRecord) -> bool:
    """`run` is going on: recorded running, by a process still there (`RunRecord.process_gone`)."""
    return run.status == "running" and not run.process_gone()


def _ended_since(store: Store, run_id: int) -> bool:
    """The run `run_id`, going on when a snapshot of it was read, has ended since (or its process is gone): a page of
    that snapshot, "running" for ever where nothing writes it again, must not take the place of the run's last."""
    return not _going_on(store.run(run_id))


def _newer_there(page: Path, taken_at: float) -> bool:
    """The page at `page` holds a snapshot read after the one of `taken_at`, as its stamp says (a page of the run
    going on written by another process, or by the run, while this one was built)."""
    there = stamp_taken(page)
    return there is not None and there > round(taken_at, 3) and page.is_file()


def _as_of_state(store: Store, snapshot: Snapshot) -> Snapshot:
    """`snapshot` as a page tells it: of a run going on, at the moment it was read (each rebuild a new stamp, which
    tells a live page that the run still writes it); of one no longer going on, as of the last change of what the
    page tells (`Store.last_change`: its manifest's runs, its jobs), so that a report rebuilt from a state unchanged
    there is the very same file (an output folder under version control shows no change), however often the other
    manifests sharing the state run."""
    run = snapshot.run
    if _going_on(run):
        return snapshot
    last = store.last_change(run.id, run.manifest_name)
    return snapshot if last is None else dataclasses.replace(snapshot, taken_at=last)


def _stamp_text(taken_at: float, ended: dict[str, Any] | None = None) -> str:
    """The stamp script: the snapshot's time, as the page's data holds it (`runs[0].taken`); with `ended`, what a
    page the run that ended could not write over says at once (`_stamp_ended`)."""
    stamp: dict[str, Any] = {"taken": round(taken_at, 3)}
    if ended is not None:
        stamp["ended"] = ended
    return f"{STAMP_SET}{_json_text(stamp)};\n"


def _not_written(stamp: Path | None, snapshot: Snapshot, target: Path, exc: BaseException, *, earlier: bool) -> None:
    """Where the page at `target` was not written (`exc`: a full disk, a Ctrl-C, an error) and its run has ended,
    the page there, of the run going on or of a run before it, tells an open tab it is out of date (`_stamp_ended`);
    a page not of gridrun's choosing (no `stamp`) or of a run going on is left be."""
    run = snapshot.run
    if stamp is None or not _left_behind(run, target):
        return
    why = ("full" if isinstance(exc, OSError) and disk_full(exc) else
           "interrupted" if isinstance(exc, KeyboardInterrupt) else "error")
    _stamp_ended(stamp, run, snapshot.taken_at, why, earlier=earlier)


def _left_behind(run: RunRecord, page: Path) -> bool:
    """A page is there at `page` and `run` has ended (or its process is gone): a page it did not write over is left
    out of date; a run going on writes its page again."""
    return not _going_on(run) and page.is_file()


def mark_out_of_date(store: Store, run_id: int, report: Path) -> None:
    """The page at `report` (the run's `report.html`), left as it was by the run `run_id`, which ended without
    writing its final page (a Ctrl-C before it): its stamp tells a tab open on it that it is out of date and that
    `gridrun report` writes it (`_stamp_ended`); nothing where that run has not ended or no page is there."""
    run = store.run(run_id)
    if not _left_behind(run, report):
        return
    taken = store.last_change(run.id, run.manifest_name)  # as `_as_of_state` dates the run's last page
    _stamp_ended(stamp_path(report), run, (run.ended_at or time.time()) if taken is None else taken, "interrupted", earlier=False)


def _stamp_ended(stamp: Path, run: RunRecord, taken_at: float, why: str, *, earlier: bool) -> None:
    """The stamp of a page that the run, ended, did not write over (`why`: "full", a full disk; "interrupted", a
    Ctrl-C; "error", another failure): the page it left, open as the run went on, learns at its next look that it
    is out of date and what writes it (`outputs.stamp_ended`, which `gridrun status` reads too; `outputs.
    ended_then`). A new stamp that cannot be written either is written over the old one in place, in the room that
    one holds already; where that fails too the stamp is left as it was."""
    from .plan import relpath
    from .terminal import typed

    with contextlib.suppress(OSError, UnicodeDecodeError):
        if stamp.read_text(encoding="utf-8") == _stamp_text(taken_at):
            return  # the page there is this very snapshot's: not out of date
    command = f"gridrun report {typed(relpath(Path(run.manifest_path)))}"
    if earlier:
        command += f" --run {run.id}"
    ended = {"run": run.id, "full": why == "full", "interrupted": why == "interrupted"}
    said = f"This page is out of date: run {run.id} ended; `{command}` writes it{ended_then(ended)}."
    data = _stamp_text(taken_at, {**ended, "text": said}).encode()
    try:
        atomic_write(stamp, data, durable=False)
        return
    except OSError:
        pass
    try:
        fd = os.open(stamp, os.O_WRONLY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    except OSError:
        pass
    finally:
        os.close(fd)


def _description(manifest_text: str) -> str | None:
    """The manifest's `description`, from the copy its run keeps (None when it has none, or is unreadable)."""
    from .yamlsource import load_plain

    try:
        data = load_plain(manifest_text) if manifest_text else None
    except Exception:  # a copy that no longer parses: the report goes on without it
        return None
    value = data.get("description") if isinstance(data, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def write_compare_report(a: Snapshot, b: Snapshot, *, path: Path | None = None, title: str | None = None,
                         within: Path | None = None, digests: Digests | None = None, own: bool = False) -> Path:
    """Write the side-by-side report of two runs (which may come from two state folders); `within`: as
    `ensure_posters`; `digests`: the videos' digests remembered (a state folder's), which the check of a path both
    runs wrote reads, and which keep what it hashed for the next compare. At the default path (or `own`: a path
    of gridrun's choosing), in an output folder, a file gridrun did not write there is kept first (`keep_foreign`)."""
    target = Path(path) if path is not None else run_folder(a) / f"compare-{a.run.id}-{b.run.id}.html"
    ensure_posters(a, within, digests)
    ensure_posters(b, within, digests)
    page = render(a, compare=b, title=title, base_dir=target.parent, digests=digests)
    if own or path is None:
        keep_foreign(target, target.parent)
    atomic_write(target, page, durable=False)
    if digests is not None:
        digests.save()
    return target
