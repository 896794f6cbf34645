"""The `gridrun` command: parses arguments, calls the library, renders results.

Every `GridrunError` is caught in one place (`main`) and becomes a message and its exit code.
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m runner.cli`: the console script's entry, which takes signals before these imports
    from runner.entry import entry

    entry()  # imports this module as `runner.cli` and exits

import argparse
import codecs
import contextlib
import dataclasses
import difflib
import functools
import io
import itertools
import json
import math
import os
import re
import shlex
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Iterator, Mapping, NamedTuple, NoReturn, Sequence

from rich.console import Console
from rich.markup import escape

# Only what parsing the command line needs, and what every command's error says, is imported here: the library
# (manifests, plans, the state, the executor and its HTTP stack) is imported by the command that uses it, so that
# `gridrun --help` or a mistyped command answers at once. Those imports are made in the main thread, before a run
# starts the threads that import on their own (the live report's, the downloads' disk threads).
from . import __version__, bugs, limits
from .bugs import BUG
from .outputs import INODES_FIX, inodes_out, write_problem
from .entry import (
    MISSING_DEPENDENCY, NO_MEMORY_TO_IMPORT, document_begun, end_interrupted, lines_begin, missing_package,
    reading, write_end, writes_json_lines, writes_json_object,
)
from .errors import (
    BalanceError, BudgetError, CancelInterrupted, CopyNotWrittenError, EndpointError, GridrunError, LockError, ManifestErrors,
    NeverRanError, NotRecordedError, RunStartingError, UsageError,
)
from .jobs import format_value, queued_cancel_said, scaled, usd_text
from .limits import (
    FILE_TOO_LARGE, FILES_RAN_OUT, STICKY, file_size_fix, file_size_limit, open_files_fix, too_many_open_files,
)
from .options import RUN_DEFAULTS
from .records import (
    GONE_EXIT, local_time, placeholders_failed_note, run_exit, rerenders_cancelled_note, rerenders_failed_note,
    utc_offset,
)
from .terminal import runs_it_first, typed, value_shown, visible, written

if TYPE_CHECKING:
    from decimal import Decimal

    from rich.table import Table
    from rich.text import Text

    from . import api
    from .manifest import Manifest
    from .plan import Plan
    from .records import RunRecord
    from .state import Snapshot

class _Console(Console):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # rich reads COLUMNS and LINES once, as the console is made (at import): read as each line is drawn instead
        # (`_Environ`), so that a host that sets them later (a test, a notebook) is heeded
        if kwargs.get("width") is None:
            self._width = None
        if kwargs.get("height") is None:
            self._height = None
        self._interactive: bool | None = kwargs.get("force_interactive")

    @property
    def is_tty(self) -> bool:
        """Whether the stream is a terminal, as the stream itself says: rich's `is_terminal` is also true wherever
        FORCE_COLOR is set, which a CI sets to have colour in its log, not a terminal's redraws or widths."""
        isatty = getattr(self.file, "isatty", None)
        try:
            return bool(isatty is not None and isatty())
        except ValueError:  # a closed stream
            return False

    @property
    def is_interactive(self) -> bool:  # type: ignore[override]
        """Whether a display redrawn in place (a run's live display) is drawn, or plain lines: on a terminal
        (`is_tty`) that can redraw (not TERM=dumb), FORCE_COLOR asking for colour alone; rich's TTY_INTERACTIVE,
        where set to 0 or 1, decides instead."""
        if self._interactive is not None:
            return self._interactive
        asked = self._environ.get("TTY_INTERACTIVE")
        if asked in ("0", "1"):
            return asked == "1"
        return self.is_tty and self._environ.get("TERM", "").lower() not in ("dumb", "unknown")

    @is_interactive.setter
    def is_interactive(self, value: bool) -> None:
        # rich sets it as the console is made, from `is_terminal`: decided as it is read instead (above)
        self._interactive = None

    def on_broken_pipe(self) -> None:
        """A reader that stopped reading (`gridrun plan | head`) ends the output, not the command: it goes on
        (a run to its end) and exits with its own code."""
        from .outputs import mute

        self.quiet = True
        mute(sys.stderr if self.stderr else sys.stdout)

    def _check_buffer(self) -> None:
        """A write that fails otherwise (`>/dev/full`) ends the output too; the command says so at its end
        (`_said_unwritten`), not as a file of its own it could not write. The closing lines of a run whose end is
        recorded (`_closing`) are written as the progress writer's last lines are waited for: a reader that never
        reads holds the command only until a signal, which ends it at once with the run's exit code."""
        try:
            if _closing_code is not None and threading.current_thread() is threading.main_thread():
                with reading(_closing_code):
                    super()._check_buffer()
            else:
                super()._check_buffer()
        except OSError as exc:
            from .outputs import lost

            self.quiet = True
            lost(sys.stderr if self.stderr else sys.stdout, exc)


# The exit code of the run whose closing lines the command writes (`_closing`), while it writes them.
_closing_code: int | None = None


@contextlib.contextmanager
def _closing(code: int) -> Iterator[None]:
    """Within: the command writes the closing lines of a run that has recorded its end with `code` (where its
    report and videos are, what to run next). Each write waits for its reader under `entry.reading`: Ctrl-C,
    SIGTERM or a hangup then ends the command at once with `code`, as the wait for the progress writer's last lines
    does; between writes, signals are held as for the rest of the run's end (`entry.hold`)."""
    global _closing_code
    was, _closing_code = _closing_code, code
    try:
        yield
    finally:
        _closing_code = was


def _size_given(name: str) -> int | None:
    """The width (COLUMNS) or height (LINES) the environment gives, where it is a positive whole number; else none
    is given (`COLUMNS=0`, a negative or a word: the terminal's, or rich's default where there is none)."""
    value = os.environ.get(name, "").strip()
    return int(value) if value.isascii() and value.isdigit() and int(value) > 0 else None


class _Environ(Mapping[str, str]):
    """The environment as the consoles read it, as it is at each reading: a COLUMNS or LINES that is no positive
    whole number left out. rich takes `COLUMNS=0` as a width of 0, at which it prints nothing at all, errors
    included."""

    def __getitem__(self, key: str) -> str:
        value = os.environ[key]
        if key in ("COLUMNS", "LINES") and _size_given(key) is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (key for key in list(os.environ) if key in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


# No emoji codes: ":100:" in "m.yaml:100:3" or ":fire:" in a prompt is printed as written.
out = _Console(highlight=False, soft_wrap=True, emoji=False, _environ=_Environ())
err = _Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, _environ=_Environ())

PLAN_ROWS = 40
RUNS_SHOWN = 20  # the newest runs `status --runs` lists unless --last says how many (0: all)
# The width a table is drawn at on an output that is no terminal: none to speak of, each row one line.
UNBOUNDED = 1_000_000


def _table_width() -> int:
    """The width tables are drawn at on standard output: the terminal's; where it is no terminal (a file, a pipe,
    FORCE_COLOR set or not) as wide as their rows, so that a row stays one line for `grep` or `awk`, unless COLUMNS
    asks for a width (a positive one: `COLUMNS=0` asks for none)."""
    if out.is_tty or _size_given("COLUMNS") is not None:
        return out.width
    return UNBOUNDED


def _print_table(table: Any) -> None:
    """`table` on standard output at `_table_width()` (rich draws at most as wide as its console is); on a terminal
    too narrow for it (`_too_narrow`), as a list instead (`_print_list`)."""
    width = _table_width()
    if width != UNBOUNDED:
        text = _table_text(table)
        least = _least_widths(*text[:4])
        if sum(least) + text[4] * (len(least) - 1) > width:
            _print_list(text[0], text[3])
            return
        _kept_whole(table, least)
    if width == out.width:
        out.print(table)
        return
    was = out._width
    out.width = width
    try:
        out.print(table)
    finally:
        out._width = was


def _table_text(table: Any) -> tuple[list[str], list[bool], list[int | None], list[list[str]], int]:
    """The plain text of `table` (a `_PlanTable` or rich's `Table`): its headers, whether each column keeps its
    cells on one line (`no_wrap`), each column's largest width (`max_width`, None for none), its rows, and the
    cells between two columns (padding, and a rule where the table has one)."""
    from rich.text import Text

    def plain(cell: Any) -> str:
        return cell.plain if isinstance(cell, Text) else str(cell)

    if isinstance(table, _PlanTable):
        settings = [c[1] for c in table.columns]
        return ([c[0] for c in table.columns], [bool(c.get("no_wrap")) for c in settings],
                [c.get("max_width") for c in settings], [list(r) for r in table.rows], 3)
    columns = table.columns
    rows = [list(r) for r in zip(*(list(map(plain, c._cells)) for c in columns), strict=True)]
    return ([plain(c.header) for c in columns], [bool(c.no_wrap) for c in columns], [c.max_width for c in columns],
            rows, 2 + (table.box is not None))


def _least_widths(headers: Sequence[str], no_wrap: Sequence[bool], widest: Sequence[int | None],
                  rows: Sequence[Sequence[str]]) -> list[int]:
    """The width each column of a table needs so that no cell is cut short ("$0.…") nor a key split mid-word: its
    widest cell where it keeps them on one line, else its widest word (at most its `max_width`, where a column
    has one and cuts its cells by design). A terminal narrower than these and the gaps between them (a narrow
    one, a split pane) gets the table as a list (`_print_list`)."""
    from rich.cells import cell_len

    least = []
    for c, header in enumerate(headers):
        cells = [header, *(row[c] for row in rows)]
        need = max((cell_len(x) if no_wrap[c] else max((cell_len(w) for w in x.split()), default=0))
                   for x in cells)
        least.append(need if widest[c] is None else min(need, widest[c]))
    return least


def _kept_whole(table: Any, least: Sequence[int]) -> None:
    """Each column of `table` at least as wide as `least` says (`_least_widths`): rich, fitting a table to the
    terminal, narrows its widest columns first, folding a key mid-word where another column had room."""
    if isinstance(table, _PlanTable):
        table.columns = [(h, {**settings, "min_width": max(settings.get("min_width") or 0, n)})
                         for (h, settings), n in zip(table.columns, least, strict=True)]
        return
    for column, n in zip(table.columns, least, strict=True):
        column.min_width = max(column.min_width or 0, n)


def _print_list(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table too wide for the terminal, as a list: its headers on a line, then each row on a line of its own,
    wrapped by the terminal, none of its cells cut short. Each column is as wide as its widest cell, two spaces from
    the next, so that it starts at the same place on every line (an empty cell is left blank, a column empty
    throughout left out) and the terminal wraps every line at the same places; a row's last cell that is not empty
    spans the empty ones after it (the row standing for the rows not listed), and widens no column."""
    from rich.cells import cell_len

    lines = [list(headers), *(list(row) for row in rows)]
    kept = [c for c in range(len(headers)) if any(line[c] for line in lines)]
    widths = dict.fromkeys(kept, 0)
    for line in lines:
        filled = [c for c in kept if line[c]]
        for c in filled[:-1]:
            widths[c] = max(widths[c], cell_len(line[c]))

    def joined(line: Sequence[str]) -> str:
        return "  ".join(line[c] + " " * (widths[c] - cell_len(line[c])) for c in kept).rstrip()

    out.print(joined(lines[0]), markup=False, highlight=False, style="bold")
    for line in lines[1:]:
        out.print(joined(line), markup=False, highlight=False)


# --------------------------------------------------------------------------------------------------
# validate / matrix / plan


def cmd_validate(args: argparse.Namespace) -> int:
    from . import api
    from .plan import overwrites, told_read_otherwise

    plan = api.plan(args.manifest, max_jobs=args.max_jobs)
    over = plan.budget_micros is not None and plan.total_micros > plan.budget_micros
    # The state only where it tells something: files in the way, or jobs an earlier run finished (free now).
    diff = api.diff(plan) if over or plan.occupied or plan.read_otherwise else None
    for w in (*plan.warnings, *told_read_otherwise(plan, diff), *overwrites(plan, diff)):
        err.print(f"[yellow]warning[/yellow]: {escape(_lines_visible(w))}")
    if plan.budget_micros is not None and over:
        to_send, following, cost = _budgeted(plan, diff)
        if cost > plan.budget_micros:
            follow = f" and {len(following):,} in flight to follow" if following else ""
            costs = "costs" if len(to_send) == 1 and not following else "cost"
            err.print(f"[yellow]warning[/yellow]: {escape(visible(str(plan.manifest.path)))}: run.budget_usd: the "
                      f"{_jobs(len(to_send))} to send{follow} {costs} {usd_text(cost)}, above the budget of "
                      f"{usd_text(plan.budget_micros)}: `gridrun run` would refuse to start (--allow-partial "
                      "runs up to it)")
    out.print(f"{escape(visible(str(plan.manifest.path)))}: valid — {_jobs(len(plan.jobs))}, "
              f"{usd_text(plan.total_micros)} estimated")
    return 0


def _warnings(plan: Plan, diff: Any, *, sends: bool = False, planning: str | None = None) -> tuple[str, ...]:
    """What `plan` and `run` warn of: the plan's, its files in the way (`overwrites`), and the state's; `sends`
    (`run`, `plan --force`): a state that git tracks too (`resume.state_tracked`); `planning` (`plan`, the command
    it previews: "run", "run --force", "retry"...): what that command would refuse before it sends anything
    (`resume.refused_ahead`), which it says as it refuses."""
    from .plan import warnings_of

    ahead: tuple[str, ...] = ()
    if planning is not None:
        from .resume import refused_ahead

        ahead = tuple(refused_ahead(plan, diff, command=planning))
    own = warnings_of(plan, diff)
    if planning is not None and planning.startswith("retry"):
        from .manifest import Warned

        # a folder that cannot be written is refused by `retry` as by `run` (`check_writable`): the one previewed
        run, retry = "`gridrun run` would refuse it", f"`gridrun {planning}` would refuse it"
        own = [Warned(w.replace(run, retry), w.plain.replace(run, retry)) if isinstance(w, Warned) and run in w
               else w for w in own]
    if not sends:
        return (*own, *ahead)
    from .resume import state_tracked

    return (*own, *state_tracked(plan), *ahead)


def _budgeted(plan: Plan, diff: Any) -> tuple[list[Any], list[Any], int]:
    """What a run of `plan` counts against its budget before it starts, as the run itself does: (the jobs it
    sends, the jobs an earlier run left in flight that it follows, their cost in micros). Without a state,
    every job. After a run whose renders were billed clearly above their estimates, their cost counts at that
    ratio (`Diff.billing`), as the run's check counts it."""
    if diff is None:
        return list(plan.jobs), [], plan.total_micros
    to_send = diff.to_send(plan.jobs)
    sent = {j.key for j in to_send}
    following = [j for j in diff.budgeted(plan.jobs) if j.key not in sent]
    return to_send, following, scaled(sum(j.cost_micros for j in (*to_send, *following)), diff.billing)


def _in_flight_cost(plan: Plan, diff: Any) -> str:
    """What the jobs an earlier run left in flight, which a run of `plan` follows, count against its budget (not
    yet rendered: `_budgeted`), said beside their number; "" when nothing."""
    _, following, _ = _budgeted(plan, diff)
    flying = sum(j.cost_micros for j in following)
    return f" ({usd_text(flying)})" if flying else ""


def cmd_matrix(args: argparse.Namespace) -> int:
    """Every combination, written as it is made, with plain writes: the rows of an axis of ten million values
    take no memory beyond the axis's own (a list of them all, each printed through rich, took minutes and
    gigabytes)."""
    from .export import dumps
    from .matrix import checked_of_file
    from .outputs import lost, mute

    def param_names(provider: Any, model: Any) -> Mapping[str, tuple[str, bool]]:
        """`capabilities.param_names`, as `validate` tells a request parameter written beside `params:`; asked only
        of a manifest with a field unknown where it is written, and imported then."""
        from .providers.capabilities import param_names

        return param_names(provider, model)

    # every matrix checked before a row is written
    groups, warnings = checked_of_file(Path(args.file), param_names=param_names)
    for w in warnings:  # as `validate` gives them
        err.print(f"[yellow]warning[/yellow]: {escape(_lines_visible(w))}")
    rows = _matrix_rows(groups)
    try:
        if args.json:
            from .terminal import writes_any

            ascii_only = not writes_any(sys.stdout)
            document_begun()
            sys.stdout.write("[")
            # in batches: one dumps() per row would take half as long again as the rows take to make
            for n, batch in enumerate(iter(lambda: list(itertools.islice(rows, 10_000)), [])):
                sys.stdout.write((", " if n else "") + dumps(batch, ensure_ascii=ascii_only)[1:-1])
            sys.stdout.write("]\n")
            return 0
        count = 0
        for row in rows:
            sys.stdout.write((_combination_text(row.items()) or "(empty combination)") + "\n")
            count += 1
        sys.stdout.flush()
    except BrokenPipeError:  # `gridrun matrix | head`: the reader has what it wanted
        mute(sys.stdout)
        return 0
    except OSError as exc:  # `>/dev/full`: said at the command's end
        lost(sys.stdout, exc)
        return 0
    excluded = sum(prepared.excluded() for _, prepared in groups)
    removed = f" ({excluded:,} excluded)" if excluded else ""
    out.print(f"{count:,} combination{'s' if count != 1 else ''}{removed}", style="dim")
    return 0


def _matrix_rows(groups: Sequence[tuple[str | None, Any]]) -> Iterator[dict[str, Any]]:
    """The rows `gridrun matrix` writes, one at a time: each combination's values, after its sweep's name."""
    for name, prepared in groups:
        for c in prepared.combinations():
            d = c.as_dict()
            yield {"sweep": name, **d} if name else d


def _plan_json(plan: Plan, diff: Any, *, force: bool = False, command: str = "run",
               failure_retries: int | None = None, live: Any = None, shown: str = "") -> dict[str, Any]:
    from .plan import relpath

    prefix = str(plan.outputs_dir) + os.sep

    def output(j: Any) -> str:
        return j.output_str[len(prefix):] if j.output_str.startswith(prefix) else relpath(j.output, plan.outputs_dir)

    _, _, need = _budgeted(plan, diff)
    warned = _warnings(plan, diff, sends=force, planning=command)
    return {
        "format": "gridrun.plan/1",
        "manifest": str(plan.manifest.path),
        "name": plan.manifest.name,
        "provider": plan.provider,
        "model": plan.model,
        "outputs_dir": str(plan.outputs_dir),
        "axes": list(plan.axes),
        "varying": list(plan.varying),
        "total_jobs": len(plan.jobs),
        "total_usd": round(plan.total_usd, 6),
        "total_micros": plan.total_micros,
        "budget_usd": None if plan.budget_micros is None else plan.budget_micros / 1e6,
        # `field: message`, as format /1 has them; the state's too (another manifest file of the same name)
        "warnings": [getattr(w, "plain", w) for w in warned],
        "jobs": _Lazy(len(plan.jobs), lambda: (_json_safe(
            {
                "key": j.key,
                "sweep": j.sweep,
                "repeat": j.repeat,
                "values": dict(j.values),
                "hash": j.hash,
                "params": dict(j.params),
                "size": f"{j.size[0]}x{j.size[1]}",
                "duration": j.duration,
                "mode": j.mode,
                "cost_usd": j.cost_usd,
                "cost_micros": j.cost_micros,
                "output": output(j),
                "origin": j.origin,
                "sources": dict(j.sources),
                "status": diff.reasons.get(j.key, "new") if diff else "new",
                # the endpoint a simulator made its done video at (cached only for runs against it), or null
                "made_by_simulator_at": diff.simulator_at.get(j.key) if diff else None,
            })
            for j in plan.jobs
        )),
        "excluded": [
            {"sweep": s, "values": c.as_dict(), "exclude": i} for s, c, i in plan.excluded
        ],
        "run_usd": round(need / 1e6, 6),
        "run_micros": need,
        "against_state": None if diff is None else {
            "to_submit": diff.new,
            "cached": diff.cached,
            "to_fetch_again": diff.refetch,
            "in_flight": diff.in_flight,
            "settled": diff.settled,
            "retried": diff.retried,  # of to_submit, settled jobs sent again (plan --retry)
            # of retried, those never billed whose last attempt's cost was not reported: they may be paid again
            "retried_cost_not_reported": diff.retried_unreported,
            # of to_fetch_again, the expired jobs `retry` asks a fresh URL for first, at no cost, and sends again
            # (paid, up to usd) only if the provider no longer has them or gives none (plan --retry; else 0)
            "fetched_first": {"jobs": len(diff.fetch_first), "usd": round(_fetch_first_micros(plan, diff) / 1e6, 6)},
            # of the settled jobs left, what the command that sends them again would send and cost
            "settled_sent_by": {command: {"jobs": len(jobs), "usd": round(sum(j.cost_micros for j in jobs) / 1e6, 6)}
                                for command, jobs in _retried_groups(plan, diff).items()},
            # of the settled jobs of unknown outcome, those the run looks up by key in the provider's request log
            # (no cost), collecting what it finds: `retry --unknown` (in settled_sent_by) sends again those not found
            "looked_up": len(diff.looked_up),
            # of the settled jobs of unknown outcome, those the last lookup found no request log to look them up
            # in: gridrun could not check whether they were made; looked up again too (in looked_up)
            "unchecked": len(diff.unchecked),
            # of in_flight, those an earlier run left `submitting` (a create sent, the answer not recorded): the run
            # looks them up by key first, at no cost, and sends again only those not found (up to usd)
            "submitting": {"jobs": len(diff.unanswered), "usd": round(_submitting_micros(plan, diff) / 1e6, 6)},
            "made_by_simulator_elsewhere": _elsewhere(diff),
            # of to_submit, jobs in flight (or of unknown outcome) at a simulator at another endpoint: nothing paid
            # there, sent anew here
            "sent_to_simulator_elsewhere": len(diff.anew),
            # the previous run's keys whose jobs the plan no longer has (not those renamed)
            "stale": list(diff.stale),
            # the previous run's jobs the plan has under new keys, each [key then, key now]: cached, not dropped
            "renamed": [[was, now] for was, now in diff.renamed],
            # the jobs whose request differs from the previous run's job of their key, with what differs of each
            "changed": {"count": len(diff.changed), "previous_run": diff.previous_run,
                        "changes": {key: diff.changes[key] for key in diff.changed if key in diff.changes}},
            # the done videos of cached jobs a run copies to the new path the plan gives them, at no cost, and of
            # those, the ones at a path a job of the plan writes, moved aside into .runs/superseded/ then
            "copies": _copies_json(diff.copied, plan, diff.aside),
        },
        "left_in_flight": _left_json(diff.left_behind if diff else None),
        # jobs in flight (or of unknown outcome) sent to another endpoint than this one: a run refuses to start
        "sent_elsewhere": _sent_away_json(diff.sent_away if diff else None),
        # jobs in flight (or of unknown outcome) sent with another API key (its fingerprint): a run refuses to start
        "sent_with_another_key": _key_away_json(diff.key_away if diff else None),
        "billed_above": _billed_above_json(plan, diff),
        "endpoint": {"url": plan.endpoint[0], "from": plan.endpoint[1]},
        "failure_retries": _failure_retries_json(plan, diff, failure_retries),
        # of the jobs a retry sends again, those refused with a code the same request meets again, by refusal
        "refused_again": _refused_again_json(diff, _last_billed(plan, diff)),
        # the run of this manifest going on this moment (its process holds the state's lock), which sends what it
        # planned itself: null where none is
        "live_run": None if live is None else live.as_json(shown),
        # the warnings again, each with its place as standard error and `run --json` say it (a data file's line)
        "warnings_at": [str(w) for w in warned],
    }


def _failure_retries(plan: Plan, diff: Any, given: int | None) -> tuple[int, str, int, int]:
    """What failure retries (`run.failure_retries`, or `given` by `--failure-retries`) could add to a run of
    `plan`, which no price of the plan's counts: (the new paid attempts each job may get, where that number comes
    from, the jobs the run sends or follows, the most they add: each of those jobs failing every time, each
    retry at its price). The budget stops them where it would be passed; this is the figure, not a limit."""
    n = given if given is not None else int(dict(plan.manifest.run or {}).get("failure_retries") or 0)
    if not n:
        return 0, "", 0, 0
    to_send, following, _ = _budgeted(plan, diff)
    jobs = [*to_send, *following]
    return (n, "--failure-retries" if given is not None else "run.failure_retries", len(jobs),
            n * sum(j.cost_micros for j in jobs))


def _failure_retries_json(plan: Plan, diff: Any, given: int | None) -> dict[str, Any] | None:
    """`plan --json`'s `failure_retries`: null where a run makes none, else `_failure_retries`'s figures."""
    n, source, jobs, most = _failure_retries(plan, diff, given)
    if not n:
        return None
    return {"per_job": n, "from": source, "jobs": jobs, "most_usd": round(most / 1e6, 6), "most_micros": most}


class _Lazy(list):  # type: ignore[type-arg]
    """A list of `size` items made one at a time as it is read (`make()` gives them): JSON's encoder writes each
    as it is made, and a plan of 100,000 jobs is never held as a list of their dicts, nor as one string."""

    def __init__(self, size: int, make: Callable[[], Iterator[Any]]) -> None:
        super().__init__()
        self.size, self.make = size, make

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Any]:
        return self.make()


def _say_json(doc: Mapping[str, Any], *, ensure_ascii: bool) -> None:
    """`dumps(doc, indent=2)` and a newline on standard output, as `_say` writes them, written as it is made: the
    same text (JSON's encoder makes it piece by piece whenever it indents), never held whole. A document holding
    a NaN or an infinity outside its lazy lists, which `dumps` writes as text, is made whole as `dumps` makes it;
    the items of those lists see to their own (`_json_safe`)."""
    from .export import dumps
    from .outputs import lost, mute

    document_begun()
    if _not_finite({k: v for k, v in doc.items() if not isinstance(v, _Lazy)}):
        _say(dumps(doc, ensure_ascii=ensure_ascii, indent=2))
        return
    encoder = json.JSONEncoder(ensure_ascii=ensure_ascii, allow_nan=False, default=str, indent=2)
    try:
        pieces: list[str] = []
        size = 0
        for piece in encoder.iterencode(doc):
            pieces.append(piece)
            size += len(piece)
            if size >= 1 << 16:
                sys.stdout.write("".join(pieces))
                pieces, size = [], 0
        sys.stdout.write("".join(pieces) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        mute(sys.stdout)
    except OSError as exc:
        lost(sys.stdout, exc)


def _not_finite(value: Any) -> bool:
    """Whether `value` holds a float NaN or infinity (JSON has none)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_not_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_not_finite(v) for v in value)
    return False


def _json_safe(job: dict[str, Any]) -> dict[str, Any]:
    """A job of `plan --json` with a NaN or an infinity among its values or parameters (the only figures a user
    writes) as text, as `dumps` writes it; any other job as it is."""
    from .export import _finite

    return _finite(job) if _not_finite(job["values"]) or _not_finite(job["params"]) else job


def _elsewhere(diff: Any) -> int:
    """Of the jobs a run sends, those done by a simulator at another endpoint than the plan's: rendered again."""
    from .plan import ELSEWHERE

    return sum(1 for reason in diff.reasons.values() if reason == ELSEWHERE)


def _left_json(left: Any) -> dict[str, Any] | None:
    """The jobs a run would refuse to start over (`plan --json`'s `left_in_flight`), or None."""
    if left is None:
        return None
    return {
        "run": left.run_id,
        "jobs": list(left.keys),
        "cost_usd": round(left.cost_micros / 1e6, 6),
        "cost_micros": left.cost_micros,
        "manifest_copy": str(left.copy),
        "message": left.message(),
    }


def _sent_away_json(away: Any) -> dict[str, Any] | None:
    """The jobs sent to another endpoint a run would refuse to start over (`plan --json`'s `sent_elsewhere`), or
    None."""
    if away is None:
        return None
    return {
        "jobs": {key: {"state": state, "endpoint": at} for key, state, at in zip(away.keys, away.states, away.sent_to)},
        "message": away.message(),
    }


def _key_away_json(away: Any) -> dict[str, Any] | None:
    """The jobs sent with another API key a run would refuse to start over (`plan --json`'s
    `sent_with_another_key`), or None: each job's state and its key's fingerprint, never the key."""
    if away is None:
        return None
    return {
        "jobs": {key: {"state": state, "key_fingerprint": fp}
                 for key, state, fp in zip(away.keys, away.states, away.sent_with)},
        "message": away.message(),
    }


def cmd_plan(args: argparse.Namespace) -> int:
    """`gridrun plan`: the jobs, their cost and what a run does with each against the state, offline; with
    --force, what `gridrun run --force` does (the same diff it takes), which re-renders the jobs done; with
    --retry (--unknown), what `gridrun retry` (--unknown) sends again; with --budget, whether the plan fits
    `gridrun run --budget`'s."""
    from . import api
    from .plan import budget_micros

    try:
        if args.unknown and not args.retry:
            raise UsageError("plan --unknown previews `gridrun retry --unknown`: give it with --retry")
        if (args.key or args.code) and not args.retry:
            raise UsageError("plan --key/--code pick the jobs `gridrun retry` sends again: give them with --retry")
        if args.retry and args.force:
            raise UsageError("plan --retry and --force do not go together: `gridrun retry` takes no --force")
        if args.resume and not args.force:
            raise UsageError("plan --resume goes with --force: `gridrun plan --force --resume` previews "
                             "`gridrun run --force --resume`")
        plan = api.plan(args.manifest, max_jobs=args.max_jobs)
        if args.budget is not None:  # as `run --budget` takes it: the budget of this run, not the manifest's
            plan = dataclasses.replace(plan, budget_micros=budget_micros(args.budget))
        retry = ("retry --unknown" if args.unknown else "retry") if args.retry else None
        diff = api.diff(plan, force=args.force, retry=retry, force_resume=args.resume,
                        only_keys=tuple(args.key or ()), only_codes=tuple(args.code or ()), whole=True)
        if diff is not None and (args.key or args.code):  # what `gridrun retry` refuses or warns of, said as a warning
            said = _selection_said(diff, args.key, args.code, retry or "retry")
            diff = dataclasses.replace(diff, warnings=(*diff.warnings, *said))
    except (GridrunError, sqlite3.Error, OSError) as exc:
        if args.json:  # a script reading the plan gets one JSON object still: the errors, as `run --json`'s end
            from .terminal import writes_any

            refused: dict[str, Any] = {"format": "gridrun.plan/1", "manifest": _json_manifest(args),
                                       "exit_code": _exit_code(exc), "errors": _error_lines(exc, "plan", args.manifest)}
            if isinstance(exc, ManifestErrors) and exc.not_listed:
                refused["errors_not_listed"] = exc.not_listed
            if getattr(exc, "warnings", ()):  # what may explain the errors (a value a comment cut short)
                refused["warnings"] = list(exc.warnings)
            _say_json(refused, ensure_ascii=not writes_any(sys.stdout))
        raise
    previewed = retry or ("run --force --resume" if args.resume else "run --force" if args.force else "run")
    live = api.live_run(plan)
    if live is not None and diff is not None and diff.left_behind is not None \
            and diff.left_behind.run_id == live.run_id:
        diff = dataclasses.replace(diff, left_behind=None)  # jobs the run going on follows itself: none left
    if args.json:  # as UTF-8 text, or with \u escapes where the output cannot take every character
        from .terminal import writes_any

        _say_json(_plan_json(plan, diff, force=args.force, command=previewed, failure_retries=args.failure_retries,
                             live=live, shown=_manifest_given(args) or str(plan.manifest.path)),
                  ensure_ascii=not writes_any(sys.stdout))
        return 0
    if live is not None:  # first: what is sent next is that run's, not this plan's
        err.print(f"[yellow]note[/yellow]: {escape(live.note(_manifest_given(args) or str(plan.manifest.path)))}")
    for w in _warnings(plan, diff, sends=args.force, planning=previewed):
        err.print(f"[yellow]warning[/yellow]: {escape(_lines_visible(w))}")
    m = plan.manifest
    out.print(f"[bold]{escape(m.name)}[/bold] — {plan.provider} / {plan.model} — {_jobs(len(plan.jobs))}")
    if isinstance(m.data.get("description"), str):
        # its lines as written, each character that would act on the terminal (a CR, U+202E) escaped as in a value
        lines = m.data["description"].strip().split("\n")
        out.print("\n".join(f"  {visible(line)}" for line in lines), markup=False)
    jobs = plan.jobs
    shown = _shown(len(jobs), args.all, _matters(jobs, diff))
    cols = [k for k in plan.varying if k not in ("prompt",)]
    # a matrix axis named like a column of the table's own (size: the render size; s; cost; ...) is told apart
    titles = {k: f"{k} (axis)" if k in _PLAN_COLUMNS else k for k in cols}
    # The key holds every matrix value: when the columns of the values do not fit too, the key alone is shown.
    widths = [len(str(len(jobs))), max((len(_written(jobs[n].key)) for n in shown), default=3), 9, 3,
              max((len(usd_text(jobs[n].cost_micros)) for n in shown), default=4)]
    if diff:
        widths.append(max((len(diff.reasons.get(jobs[n].key, "new")) for n in shown), default=6))
    widths += [min(24, max(len(_written(titles[k])), *(len(_written(_value_text(dict(jobs[n].values).get(k, ""))))
                                               for n in shown)))
               for k in cols]
    if sum(widths) + 3 * (len(widths) - 1) > _table_width():
        cols = []
    columns: list[tuple[str, dict[str, Any]]] = [
        ("#", {"justify": "right", "style": "dim", "no_wrap": True}), ("key", {"overflow": "fold"}),
        *[(_written(titles[k]), {"no_wrap": True, "overflow": "ellipsis", "max_width": 24}) for k in cols],
        ("size", {"no_wrap": True}), ("s", {"justify": "right", "no_wrap": True}),
        ("cost", {"justify": "right", "no_wrap": True}),
        *([("status", {"overflow": "fold"})] if diff else []),
    ]
    rows: list[list[str]] = []
    for i, n in enumerate(shown):
        before = shown[i - 1] + 1 if i else 0
        if n > before:  # the rows not listed between this one and the one before
            rows.append([_written(x) for x in ["…", _gap_row(range(before, n), jobs, diff),
                                               *[""] * (len(cols) + 3 + bool(diff))]])
        j = jobs[n]
        vals = dict(j.values)
        row = [str(n + 1), j.key, *[_value_text(vals[k]) if k in vals else "" for k in cols],
               f"{j.size[0]}x{j.size[1]}", f"{j.duration:g}", usd_text(j.cost_micros)]
        if diff:
            row.append(diff.reasons.get(j.key, "new"))
        rows.append([_written(x) for x in row])
    if shown and shown[-1] < len(jobs) - 1:  # the rows not listed after the last one listed
        rows.append([_written(x) for x in ["…", _gap_row(range(shown[-1] + 1, len(jobs)), jobs, diff),
                                           *[""] * (len(cols) + 3 + bool(diff))]])
    _print_table(_PlanTable(columns, rows))
    if len(shown) < len(jobs):
        out.print(f"{_jobs(len(jobs) - len(shown))} not listed; --all lists every one", style="dim")
    _print_totals(plan, diff, force=args.force, retry=retry, resume=args.resume, failure_retries=args.failure_retries)
    if diff and args.force and not args.resume and diff.forced:
        _resume_note(plan, diff)
    if diff and diff.left_behind:
        refusal = escape(diff.left_behind.message())
        err.print(f"[yellow]warning[/yellow]: `gridrun run` would refuse to start: {refusal}")
    if diff and diff.sent_away:
        refusal = escape(diff.sent_away.message())
        err.print(f"[yellow]warning[/yellow]: `gridrun run` would refuse to start: {refusal}")
    if diff and diff.key_away:
        refusal = escape(diff.key_away.message())
        err.print(f"[yellow]warning[/yellow]: `gridrun run` would refuse to start: {refusal}")
    if args.explain:
        _explain(plan, every=args.all, diff=diff)
    return 0


def _resume_note(plan: Plan, diff: Any) -> None:
    """Of `plan --force` where the latest --force run was stopped before it sent every re-render: that `--force`
    pays again for those it made, and what `--force --resume` sends instead (the re-renders left), at its price."""
    from . import api

    rest = api.diff(plan, force=True, force_resume=True)
    if rest is None or not rest.forced or rest.forced >= diff.forced:
        return
    cost = sum(j.cost_micros for j in rest.to_send(plan.jobs))
    were = "it was" if rest.forced == 1 else "they were"
    out.print(f"the latest --force run left {_jobs(rest.forced)} done as {were}: `gridrun run --force --resume` sends "
              f"{rest.new:,} ({usd_text(cost)}), not the {diff.forced - rest.forced:,} it re-rendered, which --force "
              "sends, and pays for, again", markup=False, highlight=False)


# The titles of the plan table's own columns (`cmd_plan`), which a matrix axis's column does not take as is.
_PLAN_COLUMNS = frozenset({"#", "key", "size", "s", "cost", "status"})


class _PlanTable:
    """The table of `gridrun plan`: rich's `Table` of `columns` (each a header and its `add_column` settings) and
    `rows` (plain text, as standard output writes it), drawn as that table draws itself.

    Rich measures and draws a table cell by cell, through a `Padding` and a `Text` each: a plan of 1,500 jobs
    listed whole (`--all`) took seconds, most of a command that is otherwise quick. When every cell is one line
    that fits its column as it is, which is the plan of any terminal wide enough for its keys, the table's
    columns are as wide as their widest cell and each row is that row's text padded to them: rich draws the
    header (its markup, its style, its rule), and the rows are joined here, each piece with the style rich gives
    it. Any other table (a cell rich would wrap, fold, cut short with "…" or strip) is drawn by rich whole."""

    def __init__(self, columns: Sequence[tuple[str, Mapping[str, Any]]], rows: Sequence[Sequence[str]]) -> None:
        self.columns = columns
        self.rows = rows

    def table(self, rows: Sequence[Sequence[str]] = ()) -> Table:
        from rich.table import Table
        from rich.text import Text

        table = Table(show_edge=False, pad_edge=False)
        for header, settings in self.columns:
            table.add_column(header, **settings)
        for row in rows:
            table.add_row(*(Text(x) for x in row))
        return table

    def __rich_console__(self, console: Console, options: Any) -> Iterator[Any]:
        from rich.cells import cell_len
        from rich.measure import Measurement
        from rich.segment import Segment

        head = self.table()
        columns = head.columns
        last = len(columns) - 1
        # the padding of each side of a cell, as `pad_edge=False` has it: none before the first nor after the last
        pads = [(0 if c == 0 else 1, 0 if c == last else 1) for c in range(len(columns))]
        widths = []
        for c, column in enumerate(columns):
            width = Measurement.get(console, options, column.header).maximum
            for row in self.rows:
                text = row[c]
                if "\t" in text or text != text.strip():
                    return (yield self.table(self.rows))
                width = max(width, cell_len(text))
            if column.max_width is not None and width > column.max_width:
                return (yield self.table(self.rows))
            widths.append(width)
        if sum(widths) + sum(map(sum, pads)) + last > options.max_width:
            return (yield self.table(self.rows))
        for column, width in zip(columns, widths):
            column.min_width = width  # the header's table is laid out as the whole table is
        yield head  # the header and its rule
        box = head.box.substitute(options, safe=console.safe_box if head.safe_box is None else head.safe_box) \
            if head.box else None
        border = console.get_style(head.style or "") + console.get_style(head.border_style or "")
        styles = [console.get_style(column.style or "") for column in columns]
        right = [column.justify == "right" for column in columns]
        for r, row in enumerate(self.rows):
            divider = "" if box is None else box.foot_vertical if r == len(self.rows) - 1 else box.mid_vertical
            plain: list[str] = []  # pieces without a style: one segment, written as the pieces would be
            for c, text in enumerate(row):
                fill = " " * (widths[c] - cell_len(text))
                pieces = [(" " * pads[c][0], styles[c]), (fill + text if right[c] else text + fill, styles[c]),
                          (" " * pads[c][1], styles[c])]
                if c < last:
                    pieces.append((divider, border))
                for piece, style in pieces:
                    if not piece:
                        continue
                    if style:
                        if plain:
                            yield Segment("".join(plain))
                            plain = []
                        yield Segment(piece, style)
                    else:
                        plain.append(piece)
            plain.append("\n")
            yield Segment("".join(plain))


def _written(text: str) -> str:
    """`text` as standard output writes it (ASCII for characters its encoding lacks, control characters escaped):
    what a table is laid out on."""
    text = value_shown(text)
    # printable ASCII, all that `visible` leaves of it, is written as it is in any encoding: most cells of a plan
    return text if text.isascii() else written(out.file, text)


# The spacing a job key folds into one space (`jobs.whole_key_text`) that is a control character: a CR, a tab, a line
# break, a vertical tab, a form feed, the separators \x1c-\x1f, a NEL.
_FOLDED_CONTROL = re.compile("[\t\n\x0b\x0c\r\x1c-\x1f\x85]")


def _but_report_error(result: Any, json_lines: bool) -> Any:
    """The run's last figures as its closing lines say them: on a terminal or plain lines, without the final
    report's error among its errors, as the warning below them says it (once, with what writes the report);
    JSON lines keep it in the end event's `last_errors`."""
    s = result.stats
    if json_lines or not result.report_error or result.report_error not in s.last_errors:
        return s
    kept = [i for i, e in enumerate(s.last_errors) if e != result.report_error]
    said = tuple(s.said[i] for i in kept) if len(s.said) == len(s.last_errors) else s.said
    return dataclasses.replace(s, last_errors=tuple(s.last_errors[i] for i in kept), said=said)


def _out_of_date_report(folder: str | Path, run_id: int, manifest: str, *, bug: bool = False) -> str | None:
    """What is said of the page in the run's output folder that the run, ended, did not write over (a full disk, a
    Ctrl-C), whose stamp says so (`outputs.stamp_ended`): the page, left out of date as a tab open on it says, and what
    writes it again, naming `manifest` (which "may" write it where a bug in gridrun stopped the run's: `bug`); None
    where no such page is there."""
    found = _out_of_date_page(folder, run_id, manifest, bug=bug)
    return None if found is None else found[2]


def _out_of_date_page(folder: str | Path, run_id: int, manifest: str, *,
                      bug: bool = False) -> tuple[Path, str, str] | None:
    """The page `_out_of_date_report` tells of: (its path, the command that writes it again, what is said of it);
    None where no such page is there."""
    from .outputs import ended_then, stamp_ended
    from .plan import relpath

    for name, again in (("report.html", ""), (f"report-run-{run_id}.html", f" --run {run_id}")):
        page = Path(folder) / name
        ended = stamp_ended(page)
        if ended is not None and ended["run"] == run_id:
            command = f"gridrun report {typed(manifest)}{again}"
            return page, command, (f"{visible(relpath(page))} is out of date (run {run_id} ended; a page "
                                   f"open on it says so): `{command}` "
                                   + ("may write it" if bug else f"writes it{ended_then(ended)}"))
    return None


def _lines_visible(text: str) -> str:
    """An error's or a warning's text as written to the terminal: a control character of a path or a value in it
    (a folder named with an ESC) written as Python writes it (`visible`), each of its lines kept a line."""
    return "\n".join(map(visible, text.split("\n"))) if not text.isprintable() else text


def _value_text(value: Any) -> str:
    """A matrix value as the plan table's column shows it: as its job key writes it (`format_value`), but for a
    string holding a control character the key folds into a space (a CR, a tab), which is kept, to be shown as
    Python writes it (`\\r`, by `_written`), as `--explain` shows the value: the column shows the value sent."""
    # every character the key folds is one `isprintable` denies: most values are printable, found so at once
    if isinstance(value, str) and not value.isprintable() and _FOLDED_CONTROL.search(value):
        text = value.replace("\t", "\\t")  # `visible` leaves a tab, which a cell would show as spaces
        return text if len(text) <= 40 else f"{text[:39]}…"
    return format_value(value)


def _combination_text(values: Iterable[tuple[str, Any]]) -> str:
    """A combination of matrix values as `gridrun matrix` writes its row: `key=value, …`, each value as the plan
    table's value column shows it (a CR or a tab escaped, not folded into a space), control characters escaped."""
    return value_shown(", ".join(f"{k}={_value_text(v)}" for k, v in values))


def _cells(row: Sequence[str]) -> list[Text]:
    """A table's row of plain text (no markup), as standard output writes it (`_written`)."""
    from rich.text import Text

    return [Text(_written(x)) for x in row]


def _shown(count: int, every: bool, matters: Sequence[int] = ()) -> Sequence[int]:
    """Indices of the rows to list, in plan order: all of them, or as many rows of a large plan as its first and
    last few would be. `matters`: the rows a run acts on (sends, attaches to, fetches again, renamed), which
    then come first, the first and last few cached ones filling what is left: an edit in the middle of a long
    manifest shows the jobs it pays for, not only rows cached at either end."""
    if every or count <= PLAN_ROWS:
        return range(count)
    ends = [*range(PLAN_ROWS // 2), *range(count - PLAN_ROWS // 4, count)]
    if len(matters) in (0, count):
        return ends
    picked = set(list(matters)[:len(ends)])
    picked.update([n for n in ends if n not in picked][:len(ends) - len(picked)])
    return sorted(picked)


def _matters(jobs: Sequence[Any], diff: Any) -> list[int]:
    """Of the plan's `jobs`, the indices of those a run does more with than find cached where they are: sent,
    attached to, fetched again, left alone, or cached under another key (renamed); none without a diff."""
    if not diff:
        return []
    renamed = {now for _, now in diff.renamed}
    return [n for n, j in enumerate(jobs)
            if not diff.reasons.get(j.key, "new").startswith("cached") or j.key in renamed]


def _gap_row(hidden: Sequence[int], jobs: Sequence[Any], diff: Any) -> str:
    """The text of a row standing for the plan's rows `hidden` between two listed: how many, and how many of them
    are cached (all, or how many are not)."""
    cached = sum(1 for n in hidden if diff.reasons.get(jobs[n].key, "new").startswith("cached")) if diff else 0
    note = "" if not cached else ", cached" if cached == len(hidden) else f", {len(hidden) - cached:,} of them not cached"
    return f"{len(hidden):,} more {'job' if len(hidden) == 1 else 'jobs'}{note}"


def _print_totals(plan: Plan, diff: Any, *, force: bool = False, retry: str | None = None,
                  resume: bool = False, failure_retries: int | None = None) -> None:
    # Grouped by price too (audio on or off, a tier of another size), so that each group reads as count × price =
    # its subtotal, checkable by hand.
    from .plan import ELSEWHERE, relpath

    by_cost: dict[tuple[tuple[int, int], float, int], int] = {}
    for j in plan.jobs:
        group = (j.size, j.duration, j.cost_micros)
        by_cost[group] = by_cost.get(group, 0) + 1
    why = _price_reasons(plan.jobs, by_cost)
    # the line's own markup is its total's bold: the values of parameters that set a group apart are as written
    parts = [f"{n:,} × {w}x{h} {d:g}s{escape(why.get(((w, h), d, price), ''))} at {usd_text(price)} = "
             f"{usd_text(n * price)}" for ((w, h), d, price), n in by_cost.items()]
    out.print("total: " + "; ".join(parts)
              + f" → [bold]{usd_text(plan.total_micros)}[/bold] for {_jobs(len(plan.jobs))}")
    if plan.budget_micros is not None:
        # what this run counts against the budget, as the run's own check does: jobs done before cost nothing
        # (always named: the figure compared, which the jobs in flight may take past the jobs to submit)
        to_send, following, need = _budgeted(plan, diff)
        fits = "fits" if need <= plan.budget_micros else "[red]exceeds[/red]"
        estimated = sum(j.cost_micros for j in (*to_send, *following))
        flying = sum(j.cost_micros for j in following)
        if diff is not None and diff.billing is not None and need != estimated:
            # the estimates counted at what the last bills say the jobs cost: what `run` compares too
            this_run = (f": this run counts {usd_text(need)} against it, its {usd_text(estimated)} of estimates "
                        f"counted at {escape(diff.billing.said())}")
            if need > plan.budget_micros:  # what to do only where it does not fit
                this_run += "; correct the price table, or set a budget that covers it"
        elif flying:
            this_run = (f": this run counts {usd_text(need)} against it ({usd_text(need - flying)} to submit, "
                        f"{usd_text(flying)} in flight), of {usd_text(plan.total_micros)} for all jobs")
        elif need == plan.total_micros and len(to_send) == len(plan.jobs):
            this_run = f": this run counts {usd_text(need)} against it, for all {_jobs(len(plan.jobs))}"
        else:
            this_run = f": this run counts {usd_text(need)} against it, of {usd_text(plan.total_micros)} for all jobs"
        out.print(f"budget: {usd_text(plan.budget_micros)} ({fits}{this_run})")
    elif plan.total_micros:
        # Jobs that cost something (the simulator's are priced as the provider it mimics) and nothing to stop a run.
        out.print("budget: none (no cap: set run.budget_usd or --budget)")
    n, source, jobs, most = _failure_retries(plan, diff, failure_retries)
    if n and jobs:
        each = "the job" if jobs == 1 else f"each of the {jobs:,} jobs"
        out.print(f"failure retries: up to {n:,} per job ({source}), not in the figures above: at most "
                  f"{usd_text(most)} more, should {each} a run sends fail every time ({n:,} more attempt"
                  f"{'s' if n != 1 else ''} each, at its price); none is made of a failure that would repeat "
                  "(content policy, an invalid request)", markup=False, highlight=False)
    if diff:
        pay = sum(j.cost_micros for j in diff.to_send(plan.jobs))
        forcing = "--force --resume" if resume else "--force"
        mode = f" with {forcing}" if force else f" as `gridrun {retry}`" if retry else ""
        again = f" ({diff.retried:,} of them settled, sent again: {_retried_pay(diff)})" if diff.retried else ""
        out.print(f"against state{mode}: {diff.new:,} to submit ({usd_text(pay)}){again}, "
                  f"{diff.cached:,} cached, "
                  + (f"{diff.refetch:,} to fetch again ($0.00{_fetch_first_note(plan, diff)}), "
                     if diff.refetch else "")
                  + f"{diff.in_flight:,} in flight{_in_flight_cost(plan, diff)}, {diff.settled:,} settled"
                  + _settled_note(plan, diff, f"gridrun run {forcing}" if force else f"gridrun {retry}" if retry else
                                  "gridrun run")
                  + (f", {_renamed(diff.renamed)}" if diff.renamed else "")
                  + (f", {len(diff.stale):,} no longer in the manifest" if diff.stale else "")
                  + _differ(diff))
        if diff.unanswered:
            out.print(_submitting_note(plan, diff), markup=False, highlight=False)
        if diff.copied:
            out.print(_copied_note(diff.copied, plan, diff.aside), markup=False, highlight=False)
        _warn_billed_above(diff, pay)
        _warn_refused_again(plan, diff)
        again = _elsewhere(diff)
        if again and not force:
            where = sorted({at for key, at in diff.simulator_at.items() if diff.reasons.get(key) == ELSEWHERE})
            out.print(f"[yellow]{again:,} of them {'was' if again == 1 else 'were'} made by a simulator[/yellow] at "
                      f"{escape(', '.join(where))}, not {escape(plan.endpoint[0])}: placeholders, rendered again here "
                      "(the earlier takes kept under .runs/superseded/)")
        if diff.anew:
            n = len(diff.anew)
            out.print(f"[yellow]{n:,} of them {'was' if n == 1 else 'were'} sent to a simulator[/yellow] at "
                      f"{escape(', '.join(dict.fromkeys(diff.anew.values())))}, not {escape(plan.endpoint[0])}, and "
                      f"left in flight or unknown there: nothing paid, sent here anew (that simulator's attempts left "
                      "behind)")
    if plan.excluded:
        n = len(plan.excluded)
        out.print(f"excluded: {n:,} combination{'' if n == 1 else 's'} (--explain lists {'it' if n == 1 else 'them'})")
    out.print(f"endpoint: {plan.endpoint[0]} (from {plan.endpoint[1]})", style="dim", markup=False)
    out.print(f"outputs: {visible(relpath(plan.outputs_dir))}", style="dim", markup=False,
              highlight=False)


def _submitting_micros(plan: Plan, diff: Any) -> int:
    """What the jobs an earlier run left `submitting` (`Diff.unanswered`) cost should a run send every one again:
    the most it pays for them (each is sent at most once more, failure retries aside)."""
    keys = set(diff.unanswered)
    return sum(j.cost_micros for j in plan.jobs if j.key in keys)


def _submitting_note(plan: Plan, diff: Any) -> str:
    """What `plan` says of the jobs an earlier run left `submitting` (`Diff.unanswered`): counted in flight, yet a
    run may send them again, paid (`plan.RESENT_HOW`), up to what that costs."""
    n = len(diff.unanswered)
    one = n == 1
    them = "it" if one else "them"
    return (f"{n:,} of the jobs in flight {'was' if one else 'were'} left submitting (a create sent, the answer not "
            f"recorded): `gridrun run` looks {'it' if one else 'each'} up by its key in the provider's request log "
            f"first, at no cost, and follows {'it if found' if one else 'those found'}; it sends again only "
            f"{'one' if one else 'those'} the log shows never arrived, or, where the log cannot tell, with the same "
            f"key where the provider honours keys and still remembers it (a video made already given back at no "
            f"new cost), else leaves {them} unknown: at most {usd_text(_submitting_micros(plan, diff))} paid for "
            f"{them} (counted in the in-flight figure)")


def _warn_refused_again(plan: Plan, diff: Any) -> None:
    """Of the jobs a retry sends again, those whose last attempt met a refusal the same request meets again
    (`Diff.refused_again`): a warning for each refusal, naming the jobs and what to change, as sent unchanged they
    are refused again (and paid again where that was billed, with what those last attempts were billed)."""
    for group in _refused_again_json(diff, _last_billed(plan, diff)) or ():
        err.print(f"[yellow]warning[/yellow]: {escape(group['message'])}")


def _refused_again_json(diff: Any, billed: Mapping[str, int | None] | None = None) -> list[dict[str, Any]] | None:
    """`plan --json`'s `refused_again`: of the jobs a retry sends again, those whose last attempt met a refusal the
    same request meets again (`Diff.refused_again`), one object for each refusal (state, code, what to change): its
    jobs, how many of them the last attempt was billed for (paid again), what those last attempts were billed
    (`billed`: key -> micro-USD, None where the cost was not reported, `_last_billed`; null where it does not name
    every job or a cost was not reported), how many of them had their last attempt's cost not reported, and the
    warning `plan` gives (with that amount where it is known); null where there are none."""
    from .plan import RETRIED, RETRIED_UNREPORTED

    if diff is None or not diff.refused_again:
        return None
    bills = billed or {}
    alike: dict[tuple[str, str, str], list[str]] = {}
    for key, found in diff.refused_again.items():
        alike.setdefault(found, []).append(key)
    groups = []
    for (state, code, fix), keys in alike.items():
        paid = sum(1 for k in keys if diff.reasons.get(k) == RETRIED)
        unreported = sum(1 for k in keys if diff.reasons.get(k) == RETRIED_UNREPORTED)
        n = len(keys)
        last = [bills[k] for k in keys if k in bills]
        known = sum(b for b in last if b is not None) if len(last) == n and None not in last else None
        amount = f" ({usd_text(known)})" if known else ""
        again = (f", paid again for the {_jobs(paid)} billed the last time{amount}" if paid == n > 1 else
                 f", paid again as billed the last time{amount}" if paid == n else
                 f", paid again for the {_jobs(paid)} of them billed the last time{amount}" if paid else "")
        again += (f", the last attempt's cost not reported for the {_jobs(n)}" if unreported == n > 1 else
                  ", the last attempt's cost not reported" if unreported == n else
                  f", the last attempt's cost not reported for {_jobs(unreported)} of them" if unreported else "")
        groups.append({"state": state, "code": code, "fix": fix, "jobs": keys, "billed_last_time": paid,
                       "billed_usd": None if known is None else round(known / 1e6, 6),
                       "cost_not_reported": unreported,
                       "message": f"{n:,} of the jobs `gridrun retry` sends {state} {code}, which the same request "
                                  f"meets again ({_who(keys)}): sent unchanged, {'it' if n == 1 else 'they'} would be "
                                  f"refused again{again}: {fix} first, or leave {_them(n)} out (`--key`, `--code`)"})
    return groups


def _last_billed(plan: Plan, diff: Any) -> dict[str, int | None]:
    """Of the jobs a retry sends again whose last attempt met a refusal the same request meets again
    (`Diff.refused_again`), key -> what that attempt was billed (micro-USD; None: its cost not reported,
    `_billed_last`), as the manifest's latest run records it; empty where there are none, or the state cannot be
    read."""
    from . import api

    if diff is None or not diff.refused_again:
        return {}
    try:
        snap = api.status(plan.manifest)
    except (GridrunError, OSError, sqlite3.Error):
        return {}
    return {j.key: _billed_last(j) for j in snap.jobs if j.key in diff.refused_again}


def _billed_above_json(plan: Plan, diff: Any) -> dict[str, Any] | None:
    """`plan --json`'s figures of the warning plan gives after a run the provider billed above its estimates
    (`_warn_billed_above`): the run, its jobs billed so, their estimates and bills, and what the jobs this plan
    sends may cost billed as they were; null after no such run."""
    above = diff.billed_above if diff else None
    if above is None:
        return None
    pay = sum(j.cost_micros for j in diff.to_send(plan.jobs))
    return {"run": above.run_id, "jobs": above.jobs, "estimate_usd": round(above.estimate_micros / 1e6, 6),
            "billed_usd": round(above.billed_micros / 1e6, 6), "factor": round(above.factor, 3),
            "to_send_usd": round(pay / 1e6, 6), "to_send_may_cost_usd": round(above.may_cost(pay) / 1e6, 6)}


def _warn_billed_above(diff: Any, pay: int) -> str | None:
    """After a run the provider billed above its estimates (`Diff.billed_above`), what the `pay` micro-USD the
    jobs sent next are estimated at may cost billed so: said by `plan` and by `run` before it sends. The warning
    said, or None."""
    if diff.billed_above is not None and pay:
        said = diff.billed_above.warning(pay, f"the {usd_text(pay)} this plan sends")
        err.print(f"[yellow]warning[/yellow]: {escape(said)}")
        return str(said)
    return None


# The request parameters a price table reads (besides the duration): a group's one value of such a parameter that
# another group of its size and duration has in none of its jobs names what sets their prices apart.
_PRICED = frozenset({"quality", "resolution", "size", "generate_audio_switch"})


def _price_reasons(jobs: Sequence[Any], groups: Iterable[tuple[tuple[int, int], float, int]]
                   ) -> dict[tuple[tuple[int, int], float, int], str]:
    """For the groups of the plan's total (size, duration, price: `groups`, those of `jobs`): " with audio" for each
    whose every job has audio on, which its price includes; and for those that share a size and duration with a
    group of another price, what sets each apart (" with audio", " without audio", " quality 1080p"): the
    parameters whose value is the same across the group and that another group of that size and duration has not,
    the same across it (another value) or, for a parameter prices are read by (`_PRICED`), not (its jobs of several
    values, none this one: a quality priced at the size's tier beside one dearer). A group whose price nothing
    names gets none."""
    prices: dict[tuple[tuple[int, int], float], set[int]] = {}
    for size, duration, price in groups:
        prices.setdefault((size, duration), set()).add(price)
    heard: dict[tuple[tuple[int, int], float, int], bool] = {}  # group -> whether each of its jobs has audio on
    for j in jobs:
        group = (j.size, j.duration, j.cost_micros)
        heard[group] = heard.get(group, True) and bool(j.params.get("generate_audio_switch"))
    audio = {group: " with audio" for group, on in heard.items() if on}
    # only the jobs of a size and duration sold at more than one price are compared (most plans have none)
    shared = {at for at, seen in prices.items() if len(seen) > 1}
    if not shared:
        return audio
    common: dict[tuple[tuple[int, int], float, int], dict[str, Any]] = {}
    first: dict[tuple[tuple[int, int], float, int], Mapping[str, Any]] = {}  # each group's first job's parameters
    members: dict[tuple[tuple[int, int], float, int], list[Any]] = {}
    for j in jobs:
        if (j.size, j.duration) not in shared:
            continue
        group = (j.size, j.duration, j.cost_micros)
        members.setdefault(group, []).append(j)
        kept = common.get(group)
        if kept is None:
            common[group] = {k: format_value(v) for k, v in j.params.items() if k != "prompt"}
            first[group] = j.params
            continue
        params, earlier = j.params, first[group]
        # a value that is the first job's own object reads as it does, unformatted again
        gone = [k for k, v in kept.items()
                if k not in params or params[k] is not earlier[k] and format_value(params[k]) != v]
        for k in gone:
            del kept[k]
    values: dict[tuple[tuple[tuple[int, int], float, int], str], set[str]] = {}  # of a parameter that varies

    def lacks(other: tuple[tuple[int, int], float, int], k: str, v: str) -> bool:
        """No job of the group `other` has `v` as its parameter `k`: one value of it across the group, another, or
        several (read once, where a group's value is set against one that varies), none `v`."""
        if k in common[other]:
            return bool(common[other][k] != v)
        if k == "generate_audio_switch":
            return True
        if k not in _PRICED:  # a seed one group holds, the other several of: not what sets the price
            return False
        if (seen := values.get((other, k))) is None:
            seen = values[other, k] = {format_value(j.params[k]) for j in members[other] if k in j.params}
        return v not in seen

    out = audio
    for group, params in common.items():
        others = [g for g in common if g[:2] == group[:2] and g != group]
        if not others:
            continue
        apart = [k for k, v in params.items() if any(lacks(g, k, v) for g in others)]
        words = [("with audio" if params[k] == "true" else "without audio") if k == "generate_audio_switch"
                 else f"{k} {params[k]}" for k in apart]
        if group in audio and "with audio" not in words:
            words.insert(0, "with audio")
        if words:
            out[group] = " " + ", ".join(words)
    return out


def _fetch_first_micros(plan: Plan, diff: Any) -> int:
    """What the expired jobs `retry` fetches first (`Diff.fetch_first`) cost if the provider gives no fresh URL for
    any of them, and all are sent again."""
    keys = set(diff.fetch_first)
    return sum(j.cost_micros for j in plan.jobs if j.key in keys)


def _fetch_first_note(plan: Plan, diff: Any) -> str:
    """What the plan's "to fetch again" count says of the expired jobs `retry` asks a fresh URL for first
    (`Diff.fetch_first`): free, and sent again (paid) only for those the provider no longer has or gives no fresh
    URL for, up to what that costs."""
    n = len(diff.fetch_first)
    if not n:
        return ""
    them = "it" if n == 1 else "them"
    return (f"; {n:,} expired: a fresh URL is asked for first, at no cost; sent again only if the provider no longer "
            f"has {them}, up to {usd_text(_fetch_first_micros(plan, diff))}")


def _retried_groups(plan: Plan, diff: Any) -> dict[str, list[Any]]:
    """The settled jobs of `plan` a run leaves, by the command that sends them again (`Diff.retried_by`)."""
    by_command: dict[str, list[Any]] = {}
    for j in plan.jobs:
        if j.key in diff.retried_by:
            by_command.setdefault(diff.retried_by[j.key], []).append(j)
    return by_command


def _settled_note(plan: Plan, diff: Any, run: str = "gridrun run") -> str:
    """What the plan's "against state" line says of its settled jobs: their states, and what the command that
    sends them again (`Diff.retried_by`) would send and cost (" (failed/cancelled): `gridrun retry` sends them,
    $1.05"). Jobs of unknown outcome that `run` (the command the plan is of) looks up by key in the provider's
    request log (`Diff.looked_up`) are said to be looked up so first, at no cost: `retry --unknown` sends again
    those still not found. Those the last lookup found no request log for (`Diff.unchecked`, looked up again too)
    are said to be those gridrun could not check then."""
    if not diff.retried_by:
        return ""
    by_command = _retried_groups(plan, diff)
    states = sorted({diff.reasons[k].split(":", 1)[0] for k in diff.retried_by})
    looked, unchecked = set(diff.looked_up), set(diff.unchecked)
    parts = []
    for command, jobs in by_command.items():
        n = len(jobs)
        what = _them(n) if n == diff.settled else f"{n:,}"
        cost = usd_text(sum(j.cost_micros for j in jobs))
        found = sum(1 for j in jobs if j.key in looked) if command == "retry --unknown" else 0
        blind = sum(1 for j in jobs if j.key in unchecked) if command == "retry --unknown" else 0
        if blind:
            # no request log to look them up in when a run last asked: a run asks again (`found` counts them)
            which = _them(blind) if blind == diff.settled else f"{blind:,} of them" if blind == n else f"{blind:,}"
            parts.append(f"the provider had no request log to look {which} up in when gridrun last asked, so gridrun "
                         f"could not check whether {'it was' if blind == 1 else 'they were'} made (its dashboard or "
                         "billing can)")
        if found:
            which = _them(found) if found == diff.settled else f"{found:,} of them" if found == n else f"{found:,}"
            rest = "those still not found" if found == n else f"those still not found and the {n - found:,} not looked up"
            parts.append(f"`{run}` looks {which} up in the provider's request log (no cost) and collects what it "
                         f"finds; `gridrun {command}` sends again {rest}, {cost} (may pay twice)")
            continue
        twice = " (may pay twice)" if command == "retry --unknown" else ""
        parts.append(f"`gridrun {command}` sends {what}, {cost}{twice}")
    return f" ({'/'.join(states)}): " + "; ".join(parts)


def _copies_size(copied: Sequence[tuple[str, str]]) -> int:
    """The bytes of the videos a run copies (`Diff.copied`), those it can read the size of."""
    size = 0
    for was, _ in copied:
        with contextlib.suppress(OSError):
            size += os.path.getsize(was)
    return size


def _copies_in_the_way(copied: Sequence[tuple[str, str]], aside: Any = None) -> int:
    """Of the copies a run makes (`Diff.copied`), those whose new path holds a file already (the video of a job no
    longer in the manifest, whose old path the plan gives another job): the run moves it aside into
    .runs/superseded/ before the copy takes its place. A file the plan warns of already (`Diff.aside`) is not
    counted again."""
    # a copy's source at another's new path is said apart (moved aside as the video written there arrives)
    warned = {was for was, _ in copied} | (set() if aside is None else {*aside.unrecorded, *aside.others, *aside.own})
    return sum(1 for _, now in copied if now not in warned and os.path.lexists(now))


def _copies_json(copied: Sequence[tuple[str, str]], plan: Any, aside: Any = None) -> dict[str, int]:
    """`plan --json`'s `against_state.copies`: what the `copies:` line of `plan` says (`_copied_note`)."""
    written = {j.output_str for j in plan.jobs}
    return {"videos": len(copied), "bytes": _copies_size(copied),
            "moved_aside": sum(1 for was, _ in copied if was in written),
            "in_the_way": _copies_in_the_way(copied, aside)}


def _copied_note(copied: Sequence[tuple[str, str]], plan: Any, aside: Any = None) -> str:
    """The `copies:` line (`_copies_said`), with the copies whose new path holds another file already, which the
    run moves aside into .runs/superseded/ first (`_copies_in_the_way`)."""
    said = _copies_said(copied, plan)
    taken = _copies_in_the_way(copied, aside)
    if not taken:
        return said
    one = taken == 1
    where = ("its new path holds the video of a job the plan no longer has, which is" if len(copied) == 1
             else f"{taken:,} of their new paths hold {'the video' if one else 'videos'} of "
             f"{'a job' if one else 'jobs'} the plan no longer has, {'which is' if one else 'which are'}")
    return f"{said}; {where} moved aside into .runs/superseded/ first (a revert puts {'it' if one else 'them'} back)"


def _copies_said(copied: Sequence[tuple[str, str]], plan: Any) -> str:
    """What a run does with the done videos of cached jobs whose path this plan changes (`Diff.copied`: a sweep or
    an axis value renamed, another output template, a job another manifest's run made): each is copied to its new
    path, at no cost but disk space, and the file where it was stays as it is (an earlier run's report and export
    name it; it may be another manifest's video), but where a job of `plan` writes its own video there (rows of a
    shot list numbered again: `2.mp4` now another row's), which moves it aside into `.runs/superseded/` as it
    arrives: said, with the space the copies take, as nothing else tells."""
    from .plan import relpath

    size = _copies_size(copied)
    folders = list(dict.fromkeys(visible(relpath(Path(was).parent)) for was, _ in copied))
    more = len(folders) - 3
    where = ", ".join(folders[:3]) + (f" and {more:,} more folder{'s' if more != 1 else ''}" if more > 0 else "")
    n = len(copied)
    videos = "1 done video" if n == 1 else f"{n:,} done videos"
    written = {j.output_str for j in plan.jobs}
    taken = sum(1 for was, _ in copied if was in written)
    if taken:
        stay = ("its file is then moved aside into .runs/superseded/ when the video a job of the plan writes at its "
                "path arrives" if n == 1 else
                f"their files stay where they are (earlier runs' reports show them), but for {taken:,} at a path "
                "a job of the plan now writes, moved aside into .runs/superseded/ when that job's video arrives"
                if taken < n else
                "their files are then moved aside into .runs/superseded/ as the videos jobs of the plan write at "
                "their paths arrive")
        return (f"copies: {videos} ({size / 1e6:,.1f} MB) to {'its new path' if n == 1 else 'their new paths'}, at "
                f"no cost, from {where}; {stay} (gridrun deletes no video)")
    return (f"copies: {videos} ({size / 1e6:,.1f} MB) to {'its new path' if n == 1 else 'their new paths'}, at no "
            f"cost, from {where}, whose files are left as they are (earlier runs' reports show them; gridrun deletes "
            "no video)")


def _renamed(renamed: Sequence[tuple[str, str]]) -> str:
    """The jobs of the last run that the plan has under new keys (`Diff.renamed`), as `plan` and `run` count
    them: the same jobs, counted among the others, not as dropped."""
    (was, now), more = renamed[0], len(renamed) - 1
    return (f"{len(renamed):,} renamed (the same job{'s' if more else ''} under {'new keys' if more else 'a new key'}: "
            f"{escape(was)} is now {escape(now)}{f', and {more:,} more' if more else ''})")


def _differ(diff: Any) -> str:
    """The note "; 4 jobs differ from run 2 (provider: lumenfall then, sim now): 4 cached (done before as they are
    now)" of the jobs whose request differs from the previous run's job of their key, counted apart from the
    partition before it, which has them already; "" when none does."""
    if not diff.changed:
        return ""
    n = len(diff.changed)
    what: list[str] = []
    for key in diff.changed:
        text = diff.changes.get(key)
        if text is not None and text not in what:
            what.append(text)
    said = ""
    if len(what) == 1:
        said = f" ({escape(visible(what[0]))})"
    elif what:
        said = f" ({escape(visible(_by_field(diff)))}; --explain says each)"
    sent = sum(1 for k in diff.changed if diff.sends(k))
    cached = sum(1 for k in diff.changed if diff.reasons.get(k, "").startswith("cached"))
    parts = ([f"{sent:,} to submit"] if sent else []) + (
        [f"{cached:,} cached (done before as {'it is' if cached == 1 else 'they are'} now)"] if cached else []) + (
        [f"{n - sent - cached:,} in flight, settled or to fetch again"] if n - sent - cached else [])
    run = f"run {diff.previous_run}" if diff.previous_run is not None else "the last run"
    return f"; {n:,} job{'' if n == 1 else 's'} differ{'s' if n == 1 else ''} from {run}{said}: {', '.join(parts)}"


def _by_field(diff: Any) -> str:
    """What differs in the jobs of `diff.changed`, whose change texts are not all one, grouped by the fields that
    differ: "params.prompt, in 4 jobs (e.g. "a fox running" then, "a red fox running" now)", each set of fields
    with the jobs it is of, the first with an example; a set of fields said of one job only shows its words."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for key in diff.changed:
        if key in diff.changes:
            groups.setdefault(tuple(diff.changed_fields.get(key, ())), []).append(key)
    said = []
    for fields, keys in groups.items():
        example = diff.changes[keys[0]]
        if len(keys) == 1:
            said.append(example)
            continue
        named = " and ".join(fields) if fields else "the request"
        if not said:  # the first group: its first job's words, a field's name said once
            e = example.removeprefix(f"{fields[0]}: ") if len(fields) == 1 else example
            said.append(f"{named}, in {len(keys):,} jobs (e.g. {e})")
        else:
            said.append(f"{named}, in {len(keys):,} jobs")
    return "; ".join(said)


EARLIER_SHOWN = 200
"""The characters of a parameter's earlier value `plan --explain` shows at most (a prompt of a page is cut)."""


def _earlier_value(value: Any) -> str:
    """A parameter's value in the previous run as `plan --explain` shows it under the value now: "was" and the text
    quoted, its line ends and spaces escaped (`\\r\\n`, a final `\\n`), which is often all that differs; "was not
    set"."""
    if value is None:
        return "was not set"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else format_value(value)
    text = visible(text)
    return f"was {text if len(text) <= EARLIER_SHOWN else text[:EARLIER_SHOWN - 1] + '…'}"


def _explain(plan: Plan, *, every: bool = False, diff: Any = None) -> None:
    from .plan import relpath, summarize_sources

    out.print("\n[bold]where each parameter came from[/bold]")
    for name, sources in summarize_sources(plan.jobs).items():
        out.print(f"    {name}: " + "; ".join(sources), markup=False, highlight=False)
    out.print("\n[bold]where each job came from[/bold]")
    jobs = plan.jobs
    shown = _shown(len(jobs), every)
    for i, n in enumerate(shown):
        if len(shown) < len(jobs) and i == PLAN_ROWS // 2:
            left = len(jobs) - len(shown)
            out.print(f"… {left:,} more job{'s' if left != 1 else ''} (--all explains every one)")
        j = jobs[n]
        out.print(f"[bold]{escape(visible(j.key))}[/bold]  ← {escape(visible(j.origin))}")
        run = f"run {diff.previous_run}" if diff is not None and diff.previous_run is not None else "the last run"
        if diff is not None and j.key in diff.changes:
            out.print(f"    differs from {run}: {visible(diff.changes[j.key])}", markup=False, highlight=False)
        earlier = diff.earlier.get(j.key, {}) if diff is not None else {}
        for name, value in j.params.items():
            shown_value = format_value(value) if name not in ("prompt", "negative_prompt") else json.dumps(value, ensure_ascii=False)
            out.print(f"    {escape(name)} = {escape(visible(shown_value))}   [dim]({escape(j.sources.get(name, '?'))})[/dim]")
            if name in earlier:
                out.print(f"    {' ' * len(name)}   {_earlier_value(earlier[name])}   (in {run})", markup=False,
                          highlight=False)
        for name in sorted(earlier.keys() - j.params.keys()):
            out.print(f"    {name}: {_earlier_value(earlier[name])}   (in {run}; not set now)", markup=False,
                      highlight=False)
        out.print(f"    → {relpath(j.output, plan.outputs_dir)}  {j.size[0]}x{j.size[1]}  {usd_text(j.cost_micros)}  "
                  f"hash {j.hash[:12]}", markup=False)
    if plan.excluded:
        out.print("\n[bold]removed by exclude[/bold]")
        excluded = plan.excluded if every else plan.excluded[:PLAN_ROWS]
        for sweep, c, i in excluded:
            where = f"sweep {sweep}: " if sweep else ""
            out.print(f"    {visible(where)}{_combination_text(c.values)}   ← exclude {i}", markup=False)
        if len(excluded) < len(plan.excluded):
            out.print(f"    … {len(plan.excluded) - len(excluded):,} more (--all lists every one)")


# --------------------------------------------------------------------------------------------------
# run / retry / status / cancel


def _check_resume(args: argparse.Namespace) -> None:
    """Refuse `run --resume` without --force: alone it would read as a plain run, which resumes any run anyway."""
    if getattr(args, "resume", False) and not getattr(args, "force", False):
        raise UsageError("run --resume goes with --force: `gridrun run --force --resume` re-renders the done jobs "
                         "the last --force run left as they were; a plain `gridrun run` already resumes any run")


def _options(args: argparse.Namespace, **extra: Any) -> api.RunOptions:
    from . import api

    _check_resume(args)
    return api.RunOptions(
        concurrency=getattr(args, "concurrency", None),
        budget_usd=getattr(args, "budget", None),
        allow_partial=getattr(args, "allow_partial", False),
        force=getattr(args, "force", False),
        force_resume=getattr(args, "resume", False),
        fail_fast=getattr(args, "fail_fast", False),
        leave_in_flight=getattr(args, "leave_in_flight", False),
        same_account=getattr(args, "same_account", False),
        retries=getattr(args, "retries", None),
        failure_retries=getattr(args, "failure_retries", None),
        poll_interval=getattr(args, "poll_interval", None),
        timeout=getattr(args, "timeout", None),
        request_timeout=getattr(args, "request_timeout", 30.0),
        handle_signals=True,
        **extra,
    )


# What the provider refused of the account or of the run's model ({model}), by its code (FATAL_CODES), and what
# fixes it.
_ACCOUNT_REFUSALS = {
    "INSUFFICIENT_BALANCE": ("the account, its balance too low or its quota spent (HTTP 402, or a code saying so)", "top up the balance"),
    "AUTHENTICATION_FAILED": ("the API key (HTTP 401)", "set a valid API key"),
    "MODEL_NOT_FOUND": ("the model {model}, which it does not know (HTTP 404)",
                        "check the manifest's `model:` against the models the provider lists"),
    "MODEL_DISABLED": ("the model {model}, disabled there (HTTP 404)",
                       "wait until the provider enables it again, or choose another `model:`"),
    "KEY_FORBIDDEN": ("the API key, not allowed to create videos (HTTP 403)",
                      "check the key's permissions with the provider, or set another key (the error above names it)"),
    "ENDPOINT_NOT_FOUND": ("the create request: it has no such endpoint (HTTP 404, or 405/501 for a path with no "
                           "create), so the base URL is wrong",
                           "set the provider's base URL (the error above names the one used and where it is set)"),
    "NOT_A_SIMULATOR": (("the create request: the base URL is not gridrun's simulator, and `provider: sim` sends "
                         "nothing else"),
                        ("point `base_url:` at the address `gridrun sim serve` prints, or name the provider whose API "
                         "it is in `provider:`")),
    "REDIRECTED": ("the request at the base URL, which redirects to the API's path elsewhere (HTTP 3xx)",
                   "set the provider's base URL to where it redirects (the error above names both)"),
    "REDIRECTED_AWAY": (("the request: {who} redirected it away from the API (HTTP 3xx, to the address the error "
                         "above names)"),
                        ("reach the provider past it (sign in to the network, or {proxy_fix}), and do not set the base "
                         "URL to where it redirects: the API key would go there")),
}


def _account_refusal(code: str, model: str, endpoint: str = "") -> str:
    """The cause and the fix of a run stopped by the provider's refusal of the account or of the run's `model`
    (`code`), for its end; `endpoint`, the base URL the run sent to."""
    what, fix = _ACCOUNT_REFUSALS.get(code, (f"the account ({code})", "fix the account"))
    route = _proxy_route(endpoint) if code == "REDIRECTED_AWAY" else None
    if route is not None:  # the request went through it: the proxy, or what is past it, redirected
        who = f"the proxy {visible(route.label)} or something past it"
        proxy_fix = f"set {route.var} to a proxy that reaches it"
    else:
        proxy_var = "HTTP_PROXY" if endpoint.startswith("http://") else "HTTPS_PROXY"
        who = "something between gridrun and the provider (a proxy, a login portal)"
        proxy_fix = f"set {proxy_var} to the proxy"
    return f"the provider refused {what.format(model=repr(model), who=who)}: {fix.format(proxy_fix=proxy_fix)}"



def _retried_pay(diff: Any) -> str:
    """What sending again the settled jobs of `diff` a retry sends pays: again for those an earlier attempt of was
    billed, once for those never billed, perhaps again for those whose last attempt's cost was not reported, and
    perhaps twice for those of unknown outcome (as each row says)."""
    unreported = diff.retried_unreported
    unpaid = diff.retried - diff.retried_billed - diff.retried_unknown - unreported
    parts = [(n, what) for n, what in ((diff.retried_billed, "paid again"), (unpaid, "paid, never billed before"),
                                       (unreported, "paid, the last attempt's cost not reported"),
                                       (diff.retried_unknown, "may pay twice")) if n]
    if len(parts) == 1:
        return parts[0][1]
    return ", ".join(f"{n:,} {what}" for n, what in parts)


class Advice(NamedTuple):
    """What to run next: the text said, and the commands it gives as steps to take, in its order, as the text writes
    them (the manifest left out where the text leaves it out); not those it names as what not to run (`--force`
    alone, paying again), as a way to take only after a check or a change of the manifest by hand (`retry
    --unknown`, which may pay twice; a retry sending a refused request again), nor in an aside."""

    text: str
    commands: tuple[str, ...] = ()

    def then(self, after: Advice, joint: str = "; then ") -> Advice:
        """This advice, then `after`'s steps, joined by `joint`."""
        return Advice(f"{self.text}{joint}{after.text}", (*self.commands, *after.commands))


def _next_steps(counts: Mapping[str, int], snap: Snapshot | None = None, *, budget: int | None = None,
                unsaved: str | None = None, errors: Sequence[str] = (), gone: int = 0, unchecked: int = 0,
                no_url: tuple[int, int] = (0, 0), repeated: Mapping[str, tuple[int, str, str]] | None = None,
                refused_until: Sequence[str] = (), again: Mapping[str, Refusal] | None = None,
                others: str | None = None, files_out: bool = False) -> Advice:
    """What to run next for the jobs a run left unfinished, by their states; with the run's `snap`, what
    sending the jobs not sent costs (the plan's estimate): only collecting those in flight is free. `budget`,
    the one a plain `gridrun run` has (the manifest's, not a `--budget` the run was given): what it refuses.
    `unsaved`, the output folder of a run that stopped sending because videos could not be saved there
    (stopping "write-failed"): room is made there first, or the next run pays for renders it cannot save;
    unless the run's `errors` say it ran out of file descriptors, not space. `files_out`: the run stopped because
    its polls failed for want of file descriptors (stopping "files-out"): the limit is raised first, as its
    `errors` say it was, or the next run's polls fail alike. `gone`: how many of the expired
    jobs the provider no longer has the video of (`gone_at_provider`): only a retry sends those again. `no_url`:
    how many of the others the provider gave no fresh URL for (`state.no_fresh_url`), and what rendering them again
    costs: a retry, paid, is named as their way, not a free fetch.
    `unchecked`, without `snap`: how many of the jobs of unknown outcome the last lookup found no request log for
    (`state.no_request_log`), whose outcome gridrun could not check then (with `snap`, counted from it).
    `repeated`, without `snap`: the jobs that failed (or were rejected) alike on every attempt (`Snapshot.repeated`;
    with `snap`, its own). `refused_until`, without `snap`: the expiry times of the URLs the file host refused
    while the provider keeps handing them back (`_refused_until`; with `snap`, its own). `again`, without `snap`:
    the other failed and rejected jobs whose refusal the same request meets again (`_refused_again`; with `snap`,
    its own). `others`, without `snap`: the retry that sends the failed and rejected jobs of neither of those alone
    (`_others_retry`; with `snap`, its own)."""
    if unsaved is None:
        steps = _steps(counts, snap, budget=budget, gone=gone, unchecked=unchecked, no_url=no_url, repeated=repeated,
                       refused_until=refused_until, again=again, others=others)
        if not files_out:
            return steps
        return Advice(f"polls failed for want of file descriptors: {_files_fix(errors)} first, then {steps.text}",
                      steps.commands)
    # nothing left unfinished, yet saving failed: done videos not copied to the new paths of a changed template
    steps = (_steps(counts, snap, budget=budget, gone=gone, unchecked=unchecked, no_url=no_url, repeated=repeated,
                    refused_until=refused_until, again=again, others=others)
             if _unfinished(counts) else
             Advice("`gridrun run` copies the done videos it could not to their new paths, at no cost",
                    ("gridrun run",)))
    if any(FILES_RAN_OUT in e for e in errors):
        fix = _files_fix(errors)
    elif any(STICKY in e for e in errors):  # room and write permission, but the files are another user's
        fix = ("the folder is sticky and its videos another user's, which only their owner may replace: run "
               "gridrun as that user (or give the manifest an output folder of your own, `outputs_dir:`)")
    elif any(FILE_TOO_LARGE in e for e in errors):  # a file-size limit (`ulimit -f`): the disk may have room
        fix = file_size_fix(file_size_limit())
    elif inodes_out(unsaved):  # room, but no file can be made: freeing space would not help
        fix = INODES_FIX
    else:
        fix = "free space on its disk (or make it writable)"
    return Advice(f"videos could not be saved in {visible(unsaved)}: {fix} first, then {steps.text}", steps.commands)


_FILES_FIX = re.compile(r"raise `ulimit -n`(?: \(now [^)]+\))? or lower run\.concurrency")


def _files_fix(errors: Sequence[str]) -> str:
    """What to do for a run whose polls failed, or whose videos could not be saved, for want of file descriptors, as
    its `errors` say it: the limit the run had (`open_files_fix`), not the one of the process saying it."""
    for e in errors:
        if (found := _FILES_FIX.search(e)) is not None:
            return found.group()
    return "raise `ulimit -n` or lower run.concurrency"


def _sent_elsewhere_steps(snap: Snapshot) -> list[str]:
    """How a run collects the jobs of `snap` sent to another endpoint than the manifest's now (a run against this
    one refuses over them), one step for each endpoint they were sent to."""
    from .plan import endpoint_named, endpoint_now

    now = endpoint_now(*snap.endpoint)
    steps = []
    for at in dict.fromkeys(snap.sent_elsewhere.values()):
        n = sum(1 for there in snap.sent_elsewhere.values() if there == at)
        steps.append(f"{snap.point_back[at]}, then `gridrun run` collects the {_jobs(n)} sent to {endpoint_named(at)} "
                     f"at no new cost (a run against the endpoint now, {now}, refuses over {_them(n)})")
    return steps


def _sent_with_key_steps(snap: Snapshot) -> list[str]:
    """How a run collects the jobs of `snap` sent with another API key than the one set now (a plain run refuses
    over them), one step for each key they were sent with."""
    steps = []
    var = snap.key_var or "the API key's variable"
    for fp in dict.fromkeys(snap.sent_with_key.values()):
        n = sum(1 for was in snap.sent_with_key.values() if was == fp)
        steps.append(f"set {var} back to the key of fingerprint {fp}, then `gridrun run` collects the {_jobs(n)} sent "
                     f"with it at no new cost (a run with the key now refuses over {_them(n)}; if that key is of the "
                     f"same account, a key rotated, `gridrun run --same-account` collects {_them(n)} with it)")
    return steps


def _sent_anew(snap: Snapshot) -> str:
    """What a run does with the jobs of `snap` a simulator at another endpoint than the manifest's now answered: sends
    them anew (`plan.simulator_left`)."""
    return (f"sends anew here the {_jobs(len(snap.sent_anew))} sent to a simulator at "
            f"{', '.join(dict.fromkeys(snap.sent_anew.values()))} (nothing paid there)")


def _steps(counts: Mapping[str, int], snap: Snapshot | None, *, budget: int | None, gone: int = 0,
           unchecked: int = 0, no_url: tuple[int, int] = (0, 0),
           repeated: Mapping[str, tuple[int, str, str]] | None = None, refused_until: Sequence[str] = (),
           again: Mapping[str, Refusal] | None = None, others: str | None = None) -> Advice:
    """`_next_steps` but for the output folder."""
    from .state import JobState

    if snap is not None and (snap.sent_elsewhere or snap.sent_anew or snap.sent_with_key):  # their own steps
        counts = dict(counts)
        for j in snap.jobs:
            if j.key in snap.sent_elsewhere or j.key in snap.sent_anew or j.key in snap.sent_with_key:
                counts[j.state] = counts.get(j.state, 0) - 1

    # jobs left unsent because an input image changed or went after the plan: a run does not send them as they
    # are, but plans the file as it is now (`_images_moved_step`)
    moved = _images_moved(snap) if snap is not None else {}
    unsent = counts.get("planned", 0) - sum(len(jobs) for jobs in moved.values())
    flying, unanswered = _in_flight(counts)
    expired = counts.get(JobState.EXPIRED.value, 0)
    if snap is not None:
        no_url = _no_url(snap)
    # the expired ones a plain run asks a fresh URL for, promised at no cost: not those the provider gave none for
    fetched = max(0, expired - gone - no_url[0])
    held = {j.key for jobs in moved.values() for j in jobs}
    cost = "" if snap is None else f" ({usd_text(_unsent_micros(snap, but=held))})"
    if unsent and snap is not None and (above := snap.billed_above()) is not None:
        cost = f" ({usd_text(_unsent_micros(snap, but=held))}: {above.warning(_unsent_micros(snap, but=held), 'they')})"
    run = [f"sends the {_jobs(unsent)} not sent{cost}"] if unsent else []
    run += [_sent_anew(snap)] if snap is not None and snap.sent_anew else []
    run += [f"collects the {_jobs(flying)} left in flight at no new cost{_flying_counted(snap)}"] if flying else []
    run += [_unanswered_next(unanswered, snap)] if unanswered else []
    urls = "URL" if fetched == 1 else "URLs"
    refused = (_refused_until(snap) if snap is not None else list(refused_until)) if fetched else []
    held_until = (f" ({_jobs(len(refused))} refused by the file host under the same URL the provider keeps handing "
                  f"back, until {max(refused)}: after that `gridrun retry` renders "
                  f"{'it' if len(refused) == 1 else 'them'} again, paid)") if refused else ""
    run += [f"asks again for the fresh {urls} of {_jobs(fetched)} whose {urls} expired, at no cost{held_until}"
            ] if fetched else []
    unknown = counts.get(JobState.UNKNOWN.value, 0)
    # the jobs of unknown outcome a plain run looks up by their key in the provider's request log (`resume.action`),
    # all but those with a video id (one the provider lost), which it asks for again by that id; those the last
    # lookup found no request log for (`unchecked`) are asked again too
    if snap is not None:
        unchecked = _unchecked(snap)
    unknowns = 0 if snap is None else sum(1 for j in snap.jobs if j.state == JobState.UNKNOWN.value and not j.provider_id
                                     and j.key not in snap.sent_elsewhere and j.key not in snap.sent_anew
                                     and j.key not in snap.sent_with_key)
    looked = unknowns
    run += [(f"looks up the {_jobs(looked)} of unknown outcome in the provider's request log (no cost) and collects "
             "what it finds")] if looked else []
    need = 0 if snap is None else _budgeted_micros(snap)
    # each step said, with the commands it gives to run (`Advice`)
    steps: list[tuple[str, tuple[str, ...]]]
    if run and budget is not None and need > budget:
        # a plain `gridrun run` would refuse to start: say what it takes instead
        raise_to = math.ceil(need / 10_000) / 100
        said = (f"`gridrun run --budget {raise_to:.2f}` {' and '.join(run)}: a plain `gridrun run` refuses, "
                f"counting {usd_text(need)} against its budget, above the manifest's {usd_text(budget)} "
                "(`--allow-partial` sends what that allows)")
        steps = [(said, (f"gridrun run --budget {raise_to:.2f}",))]
    else:
        steps = [(f"`gridrun run` {' and '.join(run)}", ("gridrun run",))] if run else []
    if snap is not None and snap.sent_with_key:
        steps = [*((step, ("gridrun run",)) for step in _sent_with_key_steps(snap)), *steps]
    if snap is not None and snap.sent_elsewhere:
        steps = [*((step, ("gridrun run",)) for step in _sent_elsewhere_steps(snap)), *steps]
    if moved:
        steps.append((_images_moved_step(moved), ()))  # the images put back by hand; `gridrun plan` an aside
    if snap is not None:
        repeated = snap.repeated
        again = _refused_again(snap)
        others = _others_retry(snap, repeated, again)
    # the failed and rejected jobs that ended alike on every attempt have their own step above (`_repeated_steps`),
    # as have the others whose refusal the same request meets again (`_refused_again_steps`): the plain retry step
    # names only the rest, if any
    alike = {state: sum(1 for _, _, s in (repeated or {}).values() if s == state)
             + sum(1 for r in (again or {}).values() if r.state == state) for state in ("failed", "rejected")}
    failed = max(0, (counts.get("failed") or 0) - alike["failed"])
    rejected = max(0, (counts.get("rejected") or 0) - alike["rejected"])
    # the same request sent again would end alike: the manifest is changed by hand first, no command to run as it is
    if repeated:
        steps.extend((step, ()) for step in _repeated_steps(repeated))
    if again:
        steps.extend((step, ()) for step in _refused_again_steps(again))
    picked = [what for what, n in ((_others(failed, alike["failed"], "failed jobs", "failed job"), failed),
                                   (_others(rejected, alike["rejected"], "rejected ones", "rejected one"), rejected))
              if n]
    rest = [what for what, n in ((_expired_again(expired, gone, *no_url), expired),
                                 ("cancelled ones (a new render, paid)", counts.get("cancelled"))) if n]
    if picked and others is not None and (alike["failed"] or alike["rejected"]):
        # a plain retry would send the jobs of the steps above as well: the one that picks the others alone
        listed = " and ".join(picked)
        steps.append((f"`{others}` sends {listed} again", (others,)))
        picked = []
    again = [*picked, *rest]
    if again:
        listed = again[0] if len(again) == 1 else f"{', '.join(again[:-1])} and {again[-1]}"
        steps.append((f"`gridrun retry` sends {listed} again", ("gridrun retry",)))
    if unchecked:
        were = "it was" if unchecked == 1 else "they were"
        said = (f"the provider had no request log to look up the {_jobs(unchecked)} of unknown outcome in when "
                f"gridrun last asked, so gridrun could not check whether {were} made and paid for (the "
                "provider's dashboard or billing can): `gridrun run` asks again (no cost)")
        steps.append((said, ("gridrun run",)))
    # may pay twice: a way to take after a look at the provider's dashboard, not a command to run as it comes
    if looked and looked == unknown:
        steps.append(("`gridrun retry --unknown` sends again those still not found (may pay twice)", ()))
    elif unknown:
        steps.append(("`gridrun retry --unknown` sends again those of unknown outcome (may pay twice)", ()))
    if not steps:
        return Advice("`gridrun retry` sends failed jobs again", ("gridrun retry",))
    return Advice("; ".join(text for text, _ in steps), tuple(c for _, commands in steps for c in commands))


def _others_retry(snap: Any, repeated: Mapping[str, Any] | None, again: Mapping[str, Refusal] | None) -> str | None:
    """The retry that sends again the failed and rejected jobs of `snap` (a `Snapshot`, or the state as a run left it)
    other than those with a step of their own (`repeated`, refused `again`), and none of those: `--code` of their
    code (or codes) where none of those has it, else `--key` of each of them (three at most); None when neither
    picks them alone."""
    from .options import error_code, key_glob, same_code

    own = {*(repeated or ()), *(again or ())}
    if not own:
        return None
    others = [j for j in snap.jobs if j.state in ("failed", "rejected") and not j.placeholder and j.key not in own]
    if not others:
        return None
    theirs = {error_code(j.error) for j in snap.jobs if j.key in own}
    found = [error_code(j.error) for j in others]
    codes = sorted({str(c) for c in found if c is not None})
    if (None not in found and " " not in "".join(codes)
            and not any(same_code(c, t) for c in codes for t in theirs)):
        return "gridrun retry " + " ".join(f"--code {visible(c)}" for c in codes)
    if len(others) <= 3:
        return "gridrun retry " + " ".join(f"--key {typed(key_glob(j.key))}" for j in others)
    return None


def _others(n: int, alike: int, many: str, one: str) -> str:
    """The `n` jobs a plain retry step names: all of their kind (`many`), or, when `alike` others of that kind have
    their own step for ending alike on every attempt, "the other" ones."""
    if not alike:
        return many
    return f"the other {one}" if n == 1 else f"the other {n:,} {many}"


def _repeated_steps(repeated: Mapping[str, tuple[int, str, str]]) -> list[str]:
    """One step for the jobs that ended alike (failed, rejected) on every one of the same number of attempts, with
    the same code (`Snapshot.repeated`): how often, which code, and what to change, as `gridrun retry` sends the
    same request again."""
    from .options import repeating_fix

    alike: dict[tuple[int, str, str], list[str]] = {}
    for key, (n, code, state) in repeated.items():
        alike.setdefault((n, code, state), []).append(key)
    steps = []
    for (n, code, state), keys in alike.items():
        fix = repeating_fix(code) or "check the cause"
        steps.append(f"{_who(keys)} {state} {n:,} times, each {visible(code)}: {fix}, as `gridrun retry` sends the "
                     "same request again (`--key`, `--code` pick the jobs it sends)")
    return steps


class Refusal(NamedTuple):
    """A failed or rejected job's refusal that the same request meets again (`options.refused_again`)."""

    state: str         # failed, rejected
    code: str          # the provider's code, or "HTTP 422" for a field refused with none
    fix: str           # what to change
    billed: int | None  # what its last attempt was billed, micro-USD (0: nothing; None: its cost not reported)


def _refused_again(snap: Snapshot) -> dict[str, Refusal]:
    """Of the failed and rejected jobs of `snap` not said to have ended alike on every attempt (`Snapshot.repeated`,
    `_repeated_steps`), key -> the refusal of those whose last attempt met one the same request meets again
    (`options.refused_again`): content moderation, an invalid request, a field refused. Gridrun knows this after
    the first attempt: `gridrun retry` sending it unchanged would be refused again, and billed where it was."""
    from .options import refused_again

    found: dict[str, Refusal] = {}
    for j in snap.jobs:
        if j.state not in ("failed", "rejected") or j.key in snap.repeated or j.placeholder:
            continue
        known = refused_again(j.state, j.error)
        if known is not None:
            found[j.key] = Refusal(j.state, known[0], known[1], _billed_last(j))
    return found


def _billed_last(job: Any) -> int | None:
    """What the last attempt of a failed or rejected `job` (a `Snapshot` job) was billed, micro-USD: 0 for nothing
    (a create refused, a failed render reported at $0), None for a failed render whose cost the provider did not
    report (counted $0, though it may have been billed)."""
    billed = job.counted_micros or 0
    if not billed and job.state == "failed" and job.cost_reported_micros is None:
        return None
    return billed


def _refused_again_steps(again: Mapping[str, Refusal]) -> list[str]:
    """One step for the jobs of `again` (`_refused_again`) that met the same refusal: which, what to change, and
    that `gridrun retry` would send the same request, refused again, and billed again as the last was (its cost)."""
    alike: dict[tuple[str, str, str], list[tuple[str, int | None]]] = {}
    for key, r in again.items():
        alike.setdefault((r.state, r.code, r.fix), []).append((key, r.billed))
    steps = []
    for (state, code, fix), jobs in alike.items():
        keys = [k for k, _ in jobs]
        billed = [b for _, b in jobs if b]
        unreported = sum(1 for _, b in jobs if b is None)
        if not billed:
            cost = "" if unreported else " (nothing paid)"
        elif len(billed) == len(jobs) and len(set(billed)) == 1:
            cost = f" and billed again ({usd_text(billed[0])}{' each' if len(jobs) > 1 else ''} last time)"
        else:
            cost = f" and billed again ({usd_text(sum(billed))} for {_jobs(len(billed))} of them last time)"
        if unreported:
            if unreported == len(jobs):
                note = f"{'its' if len(jobs) == 1 else 'their'} cost was not reported"
            elif billed:
                note = f"the cost of {unreported:,} of them was not reported"
            else:
                note = f"nothing paid for {len(jobs) - unreported:,} of them, the cost of {unreported:,} not reported"
            cost += f" ({note}: the provider may bill failed renders)"
        pick = (f"`gridrun retry --code {visible(code)}` sends {_them(len(keys))} anyway" if " " not in code else
                f"`gridrun retry --key` sends {_them(len(keys))} anyway")
        steps.append(f"{_who(keys)} {state} {visible(code)}: {fix}; `gridrun retry` would send the same request, "
                     f"refused again{cost}; {pick}")
    return steps


def _unchecked(snap: Snapshot) -> int:
    """How many of the jobs of unknown outcome (with no video id) the last lookup found no request log for
    (`state.no_request_log`): gridrun could not check then whether they were made; a run asks again."""
    from .state import no_request_log

    return sum(1 for j in snap.jobs if not j.provider_id and no_request_log(j.state, j.error))


def _expired_again(expired: int, gone: int, no_url: int = 0, no_url_micros: int = 0) -> str:
    """What `gridrun retry` sends of the `expired` jobs, `gone` of them no longer at the provider, `no_url` of them
    given no fresh URL by it (`state.no_fresh_url`), whose new renders cost `no_url_micros`."""
    if no_url:
        price = usd_text(no_url_micros)
        if no_url == expired:
            # each of them: the provider hands back the very URL that expired, never a fresh one
            urls = "the URL that expired" if no_url == 1 else "the URLs that expired"
            return f"expired ones (the only way, as the provider hands back only {urls}: a new render, paid, {price})"
        gone_too = f", nor for the {_jobs(gone)} it no longer has" if gone else ""
        return (f"expired ones (a new render, paid; the only way for the {_jobs(no_url)} the provider gives no fresh "
                f"URL for ({price}){gone_too})")
    first = "a fresh URL asked for first, at no cost"
    if not gone:
        return f"expired ones ({first}; a new render, paid, only if none is given)"
    those = "it" if gone == 1 else "them"
    if gone == expired:
        return f"expired ones (a new render, paid: the provider no longer has {those})"
    return (f"expired ones ({first}; a new render, paid, only if none is given: the only way for the {_jobs(gone)} "
            "the provider no longer has)")


def _run_within(command: str, need: int, budget: int | None) -> tuple[str, str]:
    """`command`, with the `--budget` that covers `need` where the manifest's `budget` does not; and what to say of
    that budget then."""
    if budget is not None and need > budget:
        return (f"{command} --budget {math.ceil(need / 10_000) / 100:.2f}",
                f", above the manifest's budget of {usd_text(budget)}")
    return command, ""


def _redo_forced(left: int, cost: int, need: int, budget: int | None, *, by: str = "this run") -> Advice:
    """What to run after a `--force` run (`by`: "this run", the one just ended, or "run N") left `left` of its re-renders done as
    they were, not sent: `--force --resume` sends those alone (`cost`), not the ones it re-rendered, which
    `--force` alone would pay for again. `need`: what that run counts against its budget; `budget`: the one a
    plain run has (the manifest's), past which it refuses to start without a `--budget` that covers it."""
    run, above = _run_within("gridrun run --force --resume", need, budget)
    were = "it was" if left == 1 else "they were"
    return Advice(f"`{run}` re-renders the {_jobs(left)} {by} left done as {were} ({usd_text(cost)}{above}), not "
                  "those it re-rendered (`gridrun run --force` alone re-renders every job, those paid again)", (run,))


def _redo_elsewhere(left: int, cost: int, need: int, budget: int | None) -> Advice:
    """What to run after a run stopped before re-rendering `left` done jobs whose videos a simulator made at another
    endpoint (`cost` to re-render), left as they were: a plain `gridrun run` re-renders those, and only those
    (`--force` would pay again for every job this run just made too). `need`: what that run counts against its
    budget; `budget`: the one a plain run has (the manifest's), past which it needs a `--budget` that covers it."""
    run, above = _run_within("gridrun run", need, budget)
    were = "it was" if left == 1 else "they were"
    return Advice(f"`{run}` re-renders the {_jobs(left)} this run left as {were}, made by a simulator at another "
                  f"endpoint ({usd_text(cost)}{above})", (run,))


def _manifest_budget(snap: Snapshot) -> int | None:
    """The budget a plain `gridrun run` of the run's manifest has: its `run.budget_usd` as the file says now (the
    run's own may have come from `--budget`), the file read where it is now (`_now_at`: the project folder moved
    since); the run's when the file cannot be read."""
    from . import api
    from .plan import budget_micros, manifest_budget

    try:
        return budget_micros(manifest_budget(api.load(_now_at(snap, snap.run.manifest_path))))
    except Exception:  # moved, or no longer valid: `run` would say so itself
        return snap.run.budget_micros


def _unanswered_next(n: int, snap: Snapshot | None, *, named: bool = False) -> str:
    """What `gridrun run` does with the `n` jobs left `submitting`: their create was sent and its answer never
    came, so whether the provider made them is not known. Not a free collect: it looks each up by its key and,
    where the provider has no such job, sends it again with that key, paying its estimate (`snap`: how much).
    `named`: the jobs were just named, so spoken of as "it" or "them"."""
    cost = "" if snap is None else f" ({usd_text(_unanswered_micros(snap))})"
    which = (f"{_them(n)} up" if named else
             f"up the {_jobs(n)} sent whose answer never came (created or not, unknown)")
    return (f"looks {which} by key and sends {_them(n)} again with the same key if the provider has no such job, "
            f"which may cost {'its' if n == 1 else 'their'} estimate{cost}")


def _flying_counted(snap: Snapshot | None, states: Collection[str] | None = None) -> str:
    """What the next run counts against its budget for the jobs left in flight, said beside "at no new cost": it
    sends nothing for them, but their renders are its spending (the estimates of those not rendered yet, as
    `_budgeted_micros` counts them); "" when that is nothing or `snap` is None. `states`: those of the jobs to
    count, of the ones not rendered yet (all of them when None)."""
    from .state import JobState

    if snap is None:
        return ""
    rendering = {JobState.SUBMITTED.value, JobState.RUNNING.value}
    if states is not None:
        rendering &= set(states)
    micros = sum(j.cost_estimate_micros for j in snap.jobs if j.state in rendering)
    if not micros:
        return ""
    one = sum(1 for j in snap.jobs if j.state in rendering) == 1
    return f" ({'its' if one else 'their'} {usd_text(micros)} counts against its budget)"


def _unanswered_micros(snap: Snapshot) -> int:
    """What the jobs left `submitting` cost should they have to be sent again, as the plan estimates them."""
    from .state import JobState

    return sum(j.cost_estimate_micros for j in snap.jobs if j.state == JobState.SUBMITTING.value)


def _no_url(snap: Snapshot) -> tuple[int, int]:
    """How many of the run's expired jobs the provider gave no fresh URL for (`state.no_fresh_url`), and what their
    new renders cost, as the plan estimates them."""
    from .state import no_fresh_url

    jobs = [j for j in snap.jobs if no_fresh_url(j.state, j.error)]
    return len(jobs), sum(j.cost_estimate_micros for j in jobs)


def _refused_until(snap: Snapshot) -> list[str]:
    """The expiry times (local, as written) of the URLs of the run's expired jobs that the file host refused while
    the provider keeps handing back the same URL (`state.same_url_until`)."""
    from .state import same_url_until

    return [t for j in snap.jobs if (t := same_url_until(j.state, j.error)) is not None]


def _gone(snap: Snapshot) -> int:
    """How many of the run's expired jobs the provider no longer has the video of (`gone_at_provider`)."""
    from .state import gone_at_provider

    return sum(1 for j in snap.jobs if gone_at_provider(j.state, j.error))


def _unsent_micros(snap: Snapshot, *, but: Collection[str] = ()) -> int:
    """What the jobs the run left unsent (planned) cost to send, as the plan estimates them; those of keys `but`
    left out."""
    from .state import JobState

    return sum(j.cost_estimate_micros for j in snap.jobs if j.state == JobState.PLANNED.value and j.key not in but)


def _images_moved(snap: Snapshot) -> dict[str, list[Any]]:
    """The jobs left unsent (planned) because an input image they name was written over or removed after the plan
    (`images.not_as_planned`), by that image's path."""
    from .images import not_as_planned
    from .state import JobState

    moved: dict[str, list[Any]] = {}
    for j in snap.jobs:
        if j.state == JobState.PLANNED.value and (path := not_as_planned(j.error)) is not None:
            moved.setdefault(path, []).append(j)
    return moved


def _images_moved_step(moved: Mapping[str, Sequence[Any]]) -> str:
    """What sends the jobs left unsent over input images changed or removed since their plan (`_images_moved`):
    the files put back as planned; as they are now, a run plans them anew (other jobs, at other costs), which
    `gridrun plan` shows. A path's characters that act on a terminal escaped."""
    from .plan import relpath

    n = sum(len(jobs) for jobs in moved.values())
    files = [visible(relpath(Path(path))) for path in sorted(moved)]
    named = files[0] if len(files) == 1 else f"{', '.join(files[:-1])} and {files[-1]}"
    it, they, is_ = ("it", "it", "is") if len(files) == 1 else ("them", "they", "are")
    cost = usd_text(sum(j.cost_estimate_micros for jobs in moved.values() for j in jobs))
    return (f"put {named} back as planned to send the {_jobs(n)} not sent over {it} ({cost}); as {they} {is_} now, "
            "`gridrun plan` shows what a run sends (and costs)")


def _retry_left(plan: Plan, retry: bool | str, snap: Snapshot) -> str:
    """What to run after a `gridrun retry` (`retry`: "--unknown" for `retry --unknown`) its budget stopped with
    jobs it was to send again left as they were (`snap`, the state as it left them): the same retry (a plain
    `gridrun run` sends none of them), with a budget that covers what it counts (those jobs, and any in flight) when
    the manifest's does not."""
    from .state import JobState

    again = ({JobState.UNKNOWN.value} if retry == "--unknown" else
             {s.value for s in (JobState.FAILED, JobState.REJECTED, JobState.EXPIRED, JobState.CANCELLED)})
    left = [j for j in snap.jobs if j.state in again]
    need = _budgeted_micros(snap) + sum(j.cost_estimate_micros for j in left)
    command = "gridrun retry --unknown" if retry == "--unknown" else "gridrun retry"
    budget, above = plan.budget_micros, ""
    if budget is not None and need > budget:
        command += f" --budget {math.ceil(need / 10_000) / 100:.2f}"
        above = (f": a plain `{command.rsplit(' --budget', 1)[0]}` refuses, counting {usd_text(need)} against its "
                 f"budget, above the manifest's {usd_text(budget)}")
    costs = usd_text(sum(j.cost_estimate_micros for j in left))
    return (f"`{command}` sends the {_jobs(len(left))} left again ({costs}"
            + ("; it may pay twice" if retry == "--unknown" else "") + f"){above}")


def _budgeted_micros(snap: Snapshot) -> int:
    """What the next `gridrun run` counts against its budget before it starts, as its own check does: the jobs
    not sent, and those in flight not yet rendered (the run follows them and pays for them), at the ratio its
    renders were billed above their estimates, where clearly so (as the next run counts them)."""
    from .state import JobState

    counted = {JobState.PLANNED.value, JobState.SUBMITTING.value, JobState.SUBMITTED.value, JobState.RUNNING.value}
    billing = snap.billing()  # bills clearly above the estimates: the next run counts them at that ratio
    return scaled(sum(j.cost_estimate_micros for j in snap.jobs if j.state in counted),
                  billing if billing is not None and billing.clear() else None)


def cmd_run(args: argparse.Namespace, **extra: Any) -> int:
    """`gridrun run`: plan the manifest and run it, drawing its progress. With --json, a run refused or stopped by
    an error before its end (the budget, an invalid manifest, a lock) still ends its output with an `end` event
    naming the exit code and the errors, as a script reading the events waits for one; the error is then raised
    on to `main`, which says it as for any command."""
    from . import api
    from .progress import Progress

    progress = Progress(err, json_lines=getattr(args, "json", False), background=True)

    def ended(exc: BaseException) -> str | None:  # an unexpected error ends a recorded run crashed (`_unexpected`)
        return "crashed" if _unexpected_error(exc) and _crashed_here(args) else _refused_status(exc)

    with _ends_json(progress, args.command, status_of=ended):
        _check_resume(args)
        manifest = api.load(args.manifest, planned=True, max_jobs=args.max_jobs)
        with api.starting(manifest):  # a `status --watch` started with this run waits for it while it plans
            return _run(args, manifest, progress, **extra)


def _refused_status(exc: BaseException) -> str | None:
    """The run status a run ended before it began by `exc` has (the README's table), where one fits: a budget
    refusal is the budget's, a balance below the run's cost `refused` (as the provider's 402 midway), an interrupt
    an interrupt, a lock another run holds `locked` (no status a run ends with: a script tells it from jobs that
    failed, which exit 1 too); an invalid manifest has none, as no run began. By the error's type, not its exit
    code: a lock held exits 1 as the balance's refusal does."""
    if isinstance(exc, BudgetError):
        return "budget"
    if isinstance(exc, (BalanceError, EndpointError)):
        return "refused"
    if isinstance(exc, LockError):
        return "locked"  # another run holds the state or the output folder: nothing done, not jobs that failed
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return None


@contextlib.contextmanager
def _ends_json(
    progress: Any, command: str, *, status_of: Callable[[BaseException], str | None] = _refused_status,
    manifest: str | None = None,
) -> Iterator[None]:
    """Ends the JSON lines of `progress` (`run --json`, `status --watch --json`) with an `end` event, `status`
    (`status_of` the error), `exit_code` and `errors`, when an error stops `command` before its own end event: a
    script reading the events waits for one, its errors as `main` says them (of `manifest`, as given), to which
    the error goes on."""
    try:
        yield
    except BaseException as caught:
        # a run's task group gathers its tasks' errors: the first is the one `main` says
        exc = _first_error(caught) if isinstance(caught, BaseExceptionGroup) else caught
        if isinstance(exc, (GridrunError, sqlite3.Error, OSError, KeyboardInterrupt)):
            if not isinstance(exc, BrokenPipeError):
                progress.failed(status=status_of(exc), exit_code=_exit_code(exc),
                                errors=_error_lines(exc, command, manifest),
                                not_listed=exc.not_listed if isinstance(exc, ManifestErrors) else 0,
                                warnings=getattr(exc, "warnings", ()))
        elif _unexpected_error(exc):  # a bug, memory run out, a package missing (`_unexpected`)
            missing = missing_package(exc)
            progress.failed(status=status_of(exc), exit_code=1 if missing is None else MISSING_DEPENDENCY,
                            errors=[missing or _unexpected_line(exc, manifest)])
        raise


def _sending_to(plan: Plan) -> str | None:
    """The line `run` says before it sends where the endpoint is not the provider's own API as gridrun's data has it
    (nor the simulator built in): where the requests, and the API key, go, and what chose it. None otherwise."""
    from .providers import capabilities

    url, source = plan.endpoint
    if not url or url == "in process":
        return None
    builtin = capabilities.builtin_base_url(plan.manifest.provider)
    if builtin and url.rstrip("/") == builtin.rstrip("/"):
        return None
    return f"sending to {url} (from {source})"


def _run(args: argparse.Namespace, manifest: Manifest, progress: Any, **extra: Any) -> int:
    from . import api
    from .plan import check_writable, relpath

    plan = api.plan(manifest, max_jobs=args.max_jobs)
    # A folder it cannot write refuses the run, every such folder named at once, before the plan's warnings (which
    # say `gridrun run` would refuse it) and the state are read.
    check_writable(plan, then="retry --unknown" if extra.get("retry_unknown") else
                   "retry" if extra.get("retry_failed") else "run")
    diff = api.diff(plan, force=getattr(args, "force", False), force_resume=getattr(args, "resume", False))
    # said on standard error as they come, and listed in the `end` event of --json (`warnings`)
    warned = list(_warnings(plan, diff, sends=True))
    picking = None  # the plan against the state of the retry's selection, made once: the run refuses by it too
    if extra.get("only_keys") or extra.get("only_codes"):
        # a selection that picks no job is refused before a run is recorded; a glob or code of it that picks none,
        # beside others that do, is warned of
        picking = api.diff(plan, retry="retry --unknown" if extra.get("retry_unknown") else "retry",
                           only_keys=extra.get("only_keys", ()), only_codes=extra.get("only_codes", ()))
        from .options import selection_misses

        refusal, misses = selection_misses(picking.retry_candidates if picking else (), extra.get("only_keys", ()),
                                           extra.get("only_codes", ()),
                                           "retry --unknown" if extra.get("retry_unknown") else "retry")
        if refusal is not None:
            raise UsageError(refusal)
        warned.extend(misses)
    for w in warned:
        err.print(f"[yellow]warning[/yellow]: {escape(_lines_visible(w))}")
    if str(plan.endpoint[0] or "").lower().startswith("https:"):
        # CA certificates the environment names wrongly refuse the run (as `api.run` does) before it says where it
        # sends: nothing would leave
        from .providers.transport import tls_problem

        if (problem := tls_problem()) is not None:
            raise UsageError(problem)
    sending = _sending_to(plan)
    if sending:
        err.print(sending, markup=False, highlight=False)
    if diff and (diff.changed or diff.stale or diff.renamed or diff.cached or diff.in_flight or diff.refetch
                 or diff.forced):
        # a job --force sends again is not new: it was made (or tried) before, and is paid again
        forced = f"{diff.forced} forced (sent again: paid again), " if diff.forced else ""
        err.print(f"plan against state: {diff.new - diff.forced} new, {forced}{diff.cached} cached, "
                  + (f"{diff.refetch} to fetch again, " if diff.refetch else "") + f"{diff.in_flight} in flight, "
                  f"{diff.settled} settled, "
                  + (f"{_renamed(diff.renamed)}, " if diff.renamed else "")
                  + f"{len(diff.stale)} no longer in the manifest" + _differ(diff))
    if diff and diff.copied:
        err.print(_copied_note(diff.copied, plan, diff.aside), markup=False, highlight=False)
    billed = (diff and diff.billed_above is not None and not (extra.get("retry_unknown") or extra.get("retry_failed"))
              and _warn_billed_above(diff, sum(j.cost_micros for j in diff.to_send(plan.jobs))))
    if billed:
        warned.append(billed)
    unknown = diff.unknown if diff else 0
    if extra.get("retry_unknown") and unknown and (extra.get("only_keys") or extra.get("only_codes")):
        # of them, those `--key`/`--code` pick (`picking`, of `retry --unknown`): the others are looked up, free, as
        # by a plain run
        unknown = picking.retried_unknown if picking else 0
    if extra.get("retry_unknown") and unknown:  # none: nothing is sent that may pay twice
        warned.append(_unknown_warning(unknown))
        err.print(f"[yellow]warning[/yellow]: {warned[-1]}", markup=True)
    progress.total = len(plan.jobs)
    with progress:
        result = api.run(plan, options=_options(args, **extra), on_progress=progress.update, argv=args.argv,
                         report=not getattr(args, "no_report", False), on_balance=progress.balance,
                         _picking=picking)
        args.run_ended = result.status  # what a write to standard output that failed is said with
        report = relpath(result.report) if result.report else None
        # the altered videos put back from gridrun's own copy, nothing fetched, said apart from those fetched again
        put_back = {r.altered for r in result.restored if r.altered is not None}
        kept = [relpath(p) for p in result.altered_kept]
        fetched = [relpath(p) for p in result.altered_kept if p not in put_back]
        restored = [(relpath(r.path), relpath(r.source),
                     None if r.altered is None else relpath(r.altered)) for r in result.restored]
        foreign = [relpath(p) for p in result.foreign_kept]
        unrecorded = [relpath(p) for p in result.unrecorded_kept]
        # the code the command ends with: 1 in place of 0 where a standard stream already failed a write
        # (`_said_unwritten`), as `2>/dev/full` makes it; a write after the event that fails still ends it 1
        from .live import MOVED_FIX
        from .outputs import UNWRITTEN

        code = (result.exit_code or 1) if UNWRITTEN else result.exit_code
        # the folder its `videos:` line names: of a project folder moved with every video, the folder's new place
        videos = relpath(_videos_at(result))
        progress.final(_but_report_error(result, progress.json_lines), report=report, videos=f"{videos}/",
                       status=result.status, exit_code=code,
                       altered_kept=kept, restored=[path for path, _, _ in restored], foreign_kept=foreign,
                       unrecorded_kept=unrecorded, warnings=[str(w) for w in warned])
    with _closing(result.exit_code):  # a reader that never reads them holds the command until a signal
        if report and not progress.json_lines:
            out.print(f"report: {visible(report)}", markup=False, highlight=False)
        elif result.report_error:
            # the page the run could not write over, left as it was: what writes it again is said of that page
            stale = None if MOVED_FIX in result.report_error else _out_of_date_report(
                result.outputs_dir, result.run_id, args.manifest, bug=BUG in result.report_error)
            then = (f"; {stale}" if stale is not None else
                    "" if MOVED_FIX in result.report_error else  # it says what writes the report itself
                    "; `gridrun report` may write it" if BUG in result.report_error
                    else "; `gridrun report` writes it once that is fixed")
            err.print(f"[yellow]warning[/yellow]: {escape(_lines_visible(result.report_error))}{escape(then)}")
        if not progress.json_lines:
            out.print(f"videos: {_videos_said(result)}", markup=False, highlight=False)
        if fetched:
            err.print(_altered_note(fetched), markup=False, highlight=False)
        for note in _restored_notes(restored):
            err.print(note, markup=False, highlight=False)
        if foreign:
            err.print(_foreign_note(foreign), markup=False, highlight=False)
        if unrecorded:
            own = _made_here(plan, result.unrecorded_kept)
            mine = [relpath(p) for p in result.unrecorded_kept if p in own]
            if mine:
                err.print(_left_note(mine), markup=False, highlight=False)
            if len(mine) < len(unrecorded):
                err.print(_unrecorded_note([u for u, p in zip(unrecorded, result.unrecorded_kept) if p not in own]),
                          markup=False, highlight=False)
        _say_end(args, plan, result,
                 retry="--unknown" if extra.get("retry_unknown") else bool(extra.get("retry_failed")))
    return result.exit_code


def _state_as_left(plan: Plan, result: Any) -> Snapshot:
    """The state as the run `result` of `plan` left it: read where it is now when its folder, or the project folder
    holding it, moved while the run went on (`RunResult.state_now`), the plan's path then naming no state."""
    from . import api

    now = getattr(result, "state_now", None)
    if getattr(result, "moved", False) and now is not None:
        return api.status(plan.manifest, state_dir=Path(now).parent)
    return api.status(plan.manifest)


def _say_end(args: argparse.Namespace, plan: Plan, result: Any, *, retry: bool | str = False) -> None:
    """What the run's end means and what to run next, on standard error, by how it ended. `retry`: the run was a
    `gridrun retry` (of failed jobs: True; "--unknown": of those of unknown outcome)."""
    from . import api
    from .plan import ELSEWHERE
    from .providers.transport import WEB_PAGE
    from .resume import FOLLOWED
    from .state import JobState

    # the simulator's placeholders whose render here failed are said on their own below, with what a plain run does
    c = _but_placeholders(result.stats.counts, getattr(result.stats, "placeholders_failed", 0))
    # what the unsent jobs cost, and those whose create went unanswered
    # jobs sent to another endpoint are left in flight only by a run with --leave-in-flight (`resume.sent_away`)
    away = getattr(args, "leave_in_flight", False) and any(c.get(s) for s in FOLLOWED)
    # and what the jobs left rendering count against the next run's budget
    # and which of the jobs of unknown outcome a plain run looks up in the provider's request log first, at no cost
    read = _state_as_left(plan, result) if away or any(c.get(s.value) for s in (
        JobState.PLANNED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING, JobState.EXPIRED,
        JobState.UNKNOWN)) else None
    snap = read if (any(c.get(s.value) for s in (JobState.PLANNED, JobState.SUBMITTING, JobState.SUBMITTED,
                                                  JobState.RUNNING, JobState.UNKNOWN))
                    or read is not None and (read.sent_elsewhere or read.sent_with_key)) else None
    unsaved = str(plan.outputs_dir) if result.stats.stopping == "write-failed" else None
    gone = _gone(read) if read is not None and c.get(JobState.EXPIRED.value) else 0
    no_url = _no_url(read) if read is not None and c.get(JobState.EXPIRED.value) else (0, 0)
    # of the others, those whose URL the file host refused while still valid: until when, as their errors say
    refused_until = _refused_until(read) if read is not None and c.get(JobState.EXPIRED.value) else []
    # of the jobs of unknown outcome, those the last lookup found no request log for: said, and asked again
    unchecked = _unchecked(read) if read is not None and c.get(JobState.UNKNOWN.value) else 0
    # the jobs that failed alike on every attempt: said with how often, and what to change
    # and the others whose refusal the same request meets again: said with what to change, and what it was billed
    ended = ((read or _state_as_left(plan, result))
             if snap is None and (c.get(JobState.FAILED.value) or c.get(JobState.REJECTED.value)) else None)
    repeated = ended.repeated if ended is not None else None
    again = _refused_again(ended) if ended is not None else None
    others = _others_retry(ended, repeated, again) if ended is not None else None
    then = _next_steps(c, snap, budget=plan.budget_micros, unsaved=unsaved, errors=result.stats.last_errors,
                       gone=gone, unchecked=unchecked, no_url=no_url, repeated=repeated, refused_until=refused_until,
                       again=again, others=others, files_out=result.stats.stopping == "files-out").text
    if result.left_done:  # re-renders not sent, left done: neither counted as unfinished nor sent by `retry`
        # what `--force --resume` sends beyond what a plain run does: the re-renders left, priced as `plan` does
        rest, plain = api.diff(plan, force=True, force_resume=True), api.diff(plan)
        if rest is not None and plain is not None and rest.forced:
            need = sum(j.cost_micros for j in rest.budgeted(plan.jobs))
            cost = need - sum(j.cost_micros for j in plain.budgeted(plan.jobs))
            redo = _redo_forced(rest.forced, cost, need, plan.budget_micros).text
            # the free step first: what is left in flight or unsent, collected or sent as by any run
            then = f"{then}; then {redo}" if _unfinished(c) else redo
    if left_elsewhere := getattr(result, "left_elsewhere", 0):  # placeholders not re-rendered: a plain run does
        plain = api.diff(plan)
        sent = plain.budgeted(plan.jobs) if plain else plan.jobs
        # counted and priced alike: every placeholder the plain run re-renders, those this run tried and put back too
        redone = [j for j in sent if plain and plain.reasons.get(j.key) == ELSEWHERE]
        redo = _redo_elsewhere(len(redone) or left_elsewhere, sum(j.cost_micros for j in redone),
                               sum(j.cost_micros for j in sent), plan.budget_micros).text
        then = f"{redo}; {then}" if _unfinished(c) or result.left_done else redo
    if result.status == "budget":
        if snap is not None or result.left_done or left_elsewhere:
            err.print(f"stopped by the budget: {then}", markup=False, highlight=False)
        elif retry:
            err.print(f"stopped by the budget: {_retry_left(plan, retry, _state_as_left(plan, result))}",
                      markup=False, highlight=False)
        else:
            err.print("stopped by the budget: raise it (--budget) and run again to go on",
                      markup=False, highlight=False)
    elif result.exit_code == 1:
        if result.refused == WEB_PAGE:
            err.print(f"stopped: {visible(plan.endpoint[0])} answers creates with a web page, not the API (a web site "
                      f"at the base URL, or a login portal on the way): no further create was sent; set the base URL "
                      f"(this one from {plan.endpoint[1]}) to the API's, or sign in to the network, first, then: "
                      f"{then}", markup=False, highlight=False)
        elif result.refused == "PROVIDER_UNAVAILABLE":
            from .executor import unavailable_until_text

            until = getattr(result, "unavailable_until", None)
            when = "" if until is None else f" until {unavailable_until_text(until, now=time.time())}"
            err.print(f"stopped: the provider is unavailable{when} (it answered creates HTTP 502, 503 or 504 with a "
                      f"Retry-After, the error above says which): no further create was sent; once it is back, "
                      f"{then}", markup=False, highlight=False)
        elif result.refused:
            err.print(f"stopped: {_account_refusal(result.refused, plan.model, plan.endpoint[0])}, then: {then}",
                      markup=False, highlight=False)
        elif result.unreached:
            via = _proxy_named(plan.endpoint[0])
            check = f"URL, the proxy {via} and the network" if via else "URL and the network"
            err.print(f"the provider could not be reached for {_jobs(result.unreached)}, left unsent: check its base "
                      f"{check} (the error above names the address), then: {then}", markup=False, highlight=False)
        elif (elsewhere := getattr(result, "cancelled_elsewhere", 0)) and not _unfinished(c):
            # cancelled by hand at the provider, another program or the provider itself: not the user's decision
            # through gridrun, so no `cancelled` end (exit 0) that a script would read as success
            err.print(f"{_jobs(elsewhere)} cancelled at the provider, not by gridrun (by hand, another program or the "
                      f"provider itself), so not finished: {then}", markup=False, highlight=False)
        elif (not_copied := getattr(result, "not_copied", 0)) and not _unfinished(c):
            # every job done: their videos alone were not copied to the new paths of a changed output template
            err.print(f"the videos of {not_copied:,} done job{'s' if not_copied != 1 else ''} were not copied to "
                      f"their new paths (whole where they were): {then}", markup=False, highlight=False)
        elif _unfinished(c) or not (result.stats.rerenders_failed or getattr(result.stats, "placeholders_failed", 0)):
            # else: failed re-renders alone, said below
            err.print(f"some jobs did not finish (`gridrun status` says why): {then}", markup=False, highlight=False)
    elif result.status == "incomplete" and (held := getattr(result, "slots_held", 0)) and (
            unsent := c.get(JobState.PLANNED.value, 0)):
        # the jobs left at their timeout held every provider slot: the run sent no more. `gridrun cancel` cancels
        # those the provider answered, not one whose create was never answered (`submitting`: no id to cancel)
        flying = _in_flight(c)[0]
        given = getattr(args, "timeout", None)
        timeout = given or (plan.manifest.run or {}).get("timeout")
        name = "`--timeout`" if given else "run.timeout"
        knob = f"{name} ({float(timeout):g} s a job)" if timeout else name
        cancel = f"; `gridrun cancel` cancels the {_jobs(flying)} in flight there" if flying else ""
        err.print(f"incomplete: {knob} left {_jobs(flying)} {_unfinished_there(c)} holding every slot (run "
                  f"concurrency {held:,}), so {_jobs(unsent)} {'was' if unsent == 1 else 'were'} not sent: {then}"
                  f"{cancel}", markup=False, highlight=False)
    elif result.status == "incomplete":
        flying, unanswered = _in_flight(c)
        timeout = getattr(args, "timeout", None) or (plan.manifest.run or {}).get("timeout")
        a_job = f" ({float(timeout):g} s a job)" if timeout else ""
        their = "its" if flying == 1 else "their"
        if flying:
            err.print(f"incomplete: {_left_unfinished(c, flying, getattr(result, 'odd_status_left', ()))} at {their} "
                      f"timeout{a_job} "
                      f"{'was' if flying == 1 else 'were'} left at the provider: {then}; `gridrun cancel` cancels "
                      f"{_them(flying)} there", markup=False, highlight=False)
        paused = getattr(result, "paused_out", 0)
        unreached = min(paused, getattr(result, "paused_unreached", 0))
        answered = getattr(result, "paused_answered", ())[:paused - unreached]
        statuses = " or ".join(str(s) for s in sorted({s for s in answered if s}))
        statuses = f"HTTP {statuses}" if statuses else "with an error"
        for n, why in ((paused - unreached - len(answered), "the provider was refusing creates (429)"),
                       (unreached, "their creates could not reach the provider" if unreached > 1 else
                        "its create could not reach the provider"),
                       (len(answered), f"their creates were answered {statuses} and the provider's request log "
                                       "has no video for them" if len(answered) > 1 else
                        f"its create was answered {statuses} and the provider's request log has no video for it")):
            if n:
                err.print(f"incomplete: {_jobs(n)} not sent: {'its' if n == 1 else 'their'} timeout{a_job} "
                          f"passed while {why}, nothing paid: {then}", markup=False, highlight=False)
        if unanswered:
            err.print(f"incomplete: {_jobs(unanswered)} whose create was sent and never answered by "
                      f"{'its' if unanswered == 1 else 'their'} timeout{a_job} "
                      f"{'was' if unanswered == 1 else 'were'} not sent again (created or not, unknown): {then}",
                      markup=False, highlight=False)
    elif result.status == "cancelled":
        n = c.get(JobState.CANCELLED.value, 0)
        ended = "done, but for" if c.get(JobState.DONE.value, 0) else "no job done:"
        err.print(f"{ended} {_jobs(n)} cancelled on request (`gridrun cancel`), left cancelled: `gridrun retry` "
                  f"sends {_them(n)} again (a new render, paid)", markup=False, highlight=False)
    elif result.exit_code == 130:
        flying, unanswered = _in_flight(c)
        # rendered and paid, their downloads cut: nothing left at the provider for `gridrun cancel` to stop
        fetching = min(flying, c.get(JobState.DOWNLOADING.value, 0))
        # only those seen rendering are known paid: one still queued at the provider is paid once it renders, and
        # `gridrun cancel` stops it before that, at no charge where the provider bills no queued cancel (as the
        # first signal's note says)
        queued = min(flying - fetching, c.get(JobState.SUBMITTED.value, 0))
        if rendering := flying - fetching - queued:
            err.print(f"interrupted with {rendering:,} paid job{'s' if rendering != 1 else ''} still in flight: "
                      f"`gridrun run` collects {_them(rendering)} at no new cost"
                      f"{_flying_counted(snap, (JobState.RUNNING.value,))}; "
                      f"`gridrun cancel` cancels {_them(rendering)} at the provider", markup=False, highlight=False)
        if queued:
            one = queued == 1
            free = getattr(result, "queued_cancel_free", None)
            once = f" (paid only once {'it renders' if one else 'they render'})" if free else ""
            err.print(f"interrupted with {_jobs(queued)} sent, not yet seen rendering{once}: `gridrun cancel` now "
                      f"{queued_cancel_said(free, one)}; `gridrun run` collects "
                      f"{_them(queued)} at no new cost{_flying_counted(snap, (JobState.SUBMITTED.value,))}",
                      markup=False, highlight=False)
        if fetching:
            one = fetching == 1
            err.print(f"interrupted with {fetching:,} paid video{'' if one else 's'} rendered, "
                      f"{'its' if one else 'their'} download cut: `gridrun run` fetches {_them(fetching)} at no cost",
                      markup=False, highlight=False)
        if unanswered:
            err.print(f"interrupted with {_jobs(unanswered)} sent whose answer never came (created or not, unknown), "
                      f"not sent again: `gridrun run` {_unanswered_next(unanswered, snap, named=True)}",
                      markup=False, highlight=False)
        if _unfinished(c) > flying + unanswered or left_elsewhere:
            err.print(f"interrupted: {then}", markup=False, highlight=False)
    if late := getattr(result, "late", 0):
        one = late == 1
        err.print(f"{_jobs(late)} left rendering at {'its' if one else 'their'} timeout finished at the provider while "
                  f"the run went on: {'its video' if one else 'their videos'} downloaded at no new cost (paid anyway)",
                  markup=False, highlight=False)
    if result.stats.rerenders_cancelled:
        err.print(_rerenders_note(result.stats.rerenders_cancelled), markup=False, highlight=False)
    if result.stats.rerenders_failed:
        err.print(_rerenders_failed_note(result.stats.rerenders_failed), markup=False, highlight=False)
    if placeholders := getattr(result.stats, "placeholders_failed", 0):
        err.print(placeholders_failed_note(placeholders), markup=False, highlight=False)
    if c.get(JobState.DONE.value) and (removed := _removed_during(plan)):
        n = len(removed)
        err.print(f"[yellow]warning[/yellow]: {_jobs(n).replace('job', 'video', 1)} of jobs done "
                  f"{'was' if n == 1 else 'were'} removed from the output folder during the run "
                  f"({escape(_some(removed))}): `gridrun run` fetches {_them(n)} again at no cost while the provider "
                  f"keeps {_them(n)} (the report marks {_them(n)} missing)")
    if ((run_id := getattr(result, "run_id", None)) is not None
            and (edited := _manifest_edited(plan.manifest)) is not None
            and (now := _manifest_now(edited, run_id, finished=not _unfinished(c))) is not None):
        # the steps above are of the manifest as this run read it; the file was edited since
        err.print(f"[yellow]warning[/yellow]: the manifest file was edited while the run went on: {escape(now[1])}")
    spent, budget = result.stats.spent_micros, result.stats.budget_micros
    if getattr(result, "followed", 0) and (followed := _state_as_left(plan, result).followed_note()) is not None:
        err.print(f"spent {usd_text(spent)}: {followed}", markup=False, highlight=False)
    if budget is not None and spent > budget and (over := _state_as_left(plan, result).over_budget_note()) is not None:
        err.print(f"[yellow]warning[/yellow]: this run {escape(over)}")


_rerenders_note = rerenders_cancelled_note


_rerenders_failed_note = rerenders_failed_note


def _but_placeholders(counts: Mapping[str, int], n: int) -> Mapping[str, int]:
    """A run's `counts` but for the `n` failed jobs whose only take is a simulator's placeholder made at another
    endpoint (`Snapshot.placeholders_failed`): done in the store, so a plain `gridrun run` renders them again, not
    `retry`; their next step is said with them (`placeholders_failed_note`)."""
    if not n:
        return counts
    return {**counts, "failed": max(0, counts.get("failed", 0) - n)}


def _rerendering_note(n: int) -> str:
    """One line for the jobs not done (to be sent, in flight) that re-render done jobs (--force, retry) whose
    earlier videos are still at their paths: kept there until the new ones arrive, and for good should a re-render
    be cancelled or fail."""
    one = n == 1
    return (f"{'1 of them is a re-render' if one else f'{n:,} of them are re-renders'} of done jobs (--force, retry): "
            f"the earlier video{'' if one else 's'} kept at {'its path' if one else 'their paths'} until "
            f"{'the new one arrives' if one else 'the new ones arrive'}")


def _videos_at(result: Any) -> Path:
    """The folder a run's videos are in as it ends, `result` its `RunResult`: its output folder; of a project folder
    moved while the run went on, the folder's new place where every video went with it (none written at the old
    place after the move), as its `videos:` line says (`_videos_said`)."""
    if result.moved and result.outputs_now is not None and not result.outputs_dir.exists():
        return result.outputs_now
    return result.outputs_dir


def _videos_said(result: Any) -> str:
    """Where a run's videos are, for its `videos:` line, `result` its `RunResult`: its output folder; of a project
    folder moved while the run went on, the folder's new place, or, where the run wrote videos at the old place
    after the move (made again there), that place with what copies them into the new one (a run from there)."""
    from .plan import relpath

    rel = relpath(result.outputs_dir)
    if not result.moved or result.outputs_now == result.outputs_dir:
        return f"{visible(rel)}/"
    now = None if result.outputs_now is None else relpath(result.outputs_now)
    if not result.outputs_dir.exists():  # every video written went with the folder
        return (f"{visible(now)}/" if now is not None else
                f"moved with the project folder that held {visible(rel)}/ while the run went on")
    into = "into it" if now is None else f"into {visible(now)}/"
    return (f"{visible(rel)}/ (written where the run started: its project folder was moved while the run went on, "
            f"and `gridrun run` from the folder's new place copies them {into} at no cost)")


def _altered_note(kept: Sequence[str]) -> str:
    """One line for the done videos a run found altered in place (`kept`: where each was kept) and fetched again."""
    one = len(kept) == 1
    where = _kept_where(kept, "take")
    return (f"{len(kept):,} video{'' if one else 's'} differed from what was downloaded: kept in {where} before "
            f"fetching {'it' if one else 'them'} again, at no cost")


def _restored_notes(restored: Sequence[tuple[str, str, str | None]]) -> list[str]:
    """A line for the done videos a run found altered, and one for those it found missing, that it put back from
    gridrun's own copy of the very take (`restored`: each video's path, the copy's, and where the altered file was
    kept, None for a missing one): nothing was fetched, as `plan` said."""
    lines = []
    altered = [(src, kept) for _, src, kept in restored if kept is not None]
    if altered:
        one = len(altered) == 1
        lines.append(f"{len(altered):,} video{'' if one else 's'} differed from what was downloaded: kept in "
                     f"{_kept_where([k for _, k in altered], 'take')}; restored from gridrun's own copy "
                     f"({_copies_where([s for s, _ in altered])}), nothing fetched")
    missing = [(path, src) for path, src, kept in restored if kept is None]
    if missing:
        one = len(missing) == 1
        lines.append(f"{len(missing):,} video{'' if one else 's'} missing "
                     f"({visible(missing[0][0]) if one else 'e.g. ' + visible(missing[0][0])}): restored from "
                     f"gridrun's own copy ({_copies_where([s for _, s in missing])}), nothing fetched")
    return lines


def _copies_where(copies: Sequence[str]) -> str:
    """Where the copies of `copies` a run put videos back from are: the path of one, else of the first and how
    many more."""
    first = visible(copies[0])
    return first if len(copies) == 1 else f"{first} and {len(copies) - 1:,} more"


def _kept_where(kept: Sequence[str], each: str) -> str:
    """Where the files of `kept` (paths under .runs/superseded/<job>/<digest>/) were kept: the path of one, else
    the folder of them all (a folder per job and `each`)."""
    return visible(kept[0] if len(kept) == 1 else f"{Path(kept[0]).parent.parent.parent}/ (a folder per job and {each})")


def _foreign_note(kept: Sequence[str]) -> str:
    """One line for the files that sat where a job's video or its poster went that nothing tells are gridrun's:
    videos no sidecar of gridrun's records (with none beside them, or edited in place) and images with no
    poster mark, as the posters of a gridrun before the mark have none (`kept`: where each was kept)."""
    one = len(kept) == 1
    where = _kept_where(kept, "file")
    return (f"{len(kept):,} file{'' if one else 's'} that gridrun cannot tell for its own (a video no sidecar of "
            f"gridrun's records, with none beside it or edited in place; an image with no poster mark: a poster an older gridrun "
            f"wrote, or an image of yours) "
            f"{'was' if one else 'were'} where a job's video or its poster went: kept in {where} before gridrun's "
            f"took {'its' if one else 'their'} place")


def _made_here(plan: Any, kept: Sequence[Path]) -> set[Path]:
    """Of `kept` (the copies a run kept of takes its state has no record of), those this state made: the sidecar
    kept beside each sent under the key part whose digest the output folder's lock, of this state folder, records
    (`key_part`), takes whose records a state lost that `gridrun recover` left as they were."""
    from .outputs import gridrun_sidecar
    from .recover import _salt_of
    from .state import key_part_digest, lock_of_state, outputs_writer

    writer = lock_of_state(outputs_writer(plan.outputs_dir), plan.outputs_dir, plan.state_dir.resolve())
    if writer is None or not writer.get("key_part"):
        return set()
    own = set()
    for path in kept:
        doc = gridrun_sidecar(Path(path))
        salt = _salt_of(doc.get("idempotency_key"), doc["hash"]) if doc is not None else None
        if salt is not None and key_part_digest(salt) == writer["key_part"]:
            own.add(path)
    return own


def _left_note(kept: Sequence[str]) -> str:
    """One line for the takes of this state's whose records it lost that `gridrun recover` left as they were (a
    video edited since, a sidecar holding a figure out of range) and that sat where a job's video went (`kept`:
    where each was kept): their jobs were rendered again."""
    one = len(kept) == 1
    where = _kept_where(kept, "video")
    return (f"{len(kept):,} video{'' if one else 's'} this state made that `gridrun recover` left as "
            f"{'it was' if one else 'they were'} (edited since, or a sidecar holding a figure out of range) "
            f"{'was' if one else 'were'} where a job's video went: kept in {where} before this run's, rendered "
            f"again, took {'its' if one else 'their'} place")


def _unrecorded_note(kept: Sequence[str]) -> str:
    """One line for the videos of gridrun's, whole as their sidecars record them, whose renders this state has no
    record of (another state's run wrote them) that sat where a job's video went (`kept`: where each was kept)."""
    one = len(kept) == 1
    where = _kept_where(kept, "video")
    return (f"{len(kept):,} video{'' if one else 's'} of gridrun's that this state did not render (another state's "
            f"run wrote {'it' if one else 'them'}: another state_dir, a copied project, a state begun again) "
            f"{'was' if one else 'were'} where a job's video went: kept in {where} before this run's took "
            f"{'its' if one else 'their'} place")


def _jobs_left(counts: Mapping[str, int]) -> bool:
    """Whether a run whose jobs are counted `counts` left any for a run to resume: planned, or in flight."""
    from .state import IN_FLIGHT, JobState

    return any(counts.get(s.value, 0) for s in (JobState.PLANNED, *IN_FLIGHT))


def _unfinished(counts: Mapping[str, int]) -> int:
    """The jobs a run left for another (`_next_steps` says what to run for them)."""
    from .state import JobState

    return sum(n for state, n in counts.items() if state not in (JobState.DONE.value, JobState.CANCELLED.value))


def _left_unfinished(counts: Mapping[str, int], flying: int, odd: Sequence[tuple[str, str]] = ()) -> str:
    """The `flying` jobs a run left unfinished at the provider at their timeout, by what the provider last said of
    them: still rendering (`running`), still in its queue (`submitted`: no poll saw it rendering), or a status
    gridrun does not know (`odd`: the state and the status answered of each such job, counted apart)."""
    from .state import JobState

    odd = list(odd)[:flying]
    queued = max(0, min(flying, counts.get(JobState.SUBMITTED.value, 0))
                 - sum(state == JobState.SUBMITTED.value for state, _ in odd))
    rendering = flying - queued - len(odd)
    statuses = " or ".join(repr(s) for s in sorted({s for _, s in odd}))
    parts = [(n, what) for n, what in ((rendering, "still rendering"),
                                       (queued, "still queued, not seen rendering"),
                                       (len(odd), f"answering status {statuses}, not one gridrun knows")) if n]
    said = [f"{_jobs(n) if not i else f'{n:,}'} {what}" for i, (n, what) in enumerate(parts)]
    text = said[0] if len(said) == 1 else ", ".join(said[:-1]) + ("," if "," in said[-2] else "") + " and " + said[-1]
    return text + ("," if "," in parts[-1][1] else "")


def _unfinished_there(counts: Mapping[str, int]) -> str:
    """How the jobs a run left in flight at their timeout are at the provider: rendering, or (some) still queued."""
    from .state import JobState

    return ("rendering or queued at the provider" if counts.get(JobState.SUBMITTED.value)
            else "rendering at the provider")


def _in_flight(counts: Mapping[str, int]) -> tuple[int, int]:
    """Of the jobs in flight, those the provider answered (a next run collects them; `gridrun cancel` cancels those
    still rendering, not those `downloading`, rendered and paid) and those whose create was sent and never answered
    (`submitting`: no id, looked up by key by the next run)."""
    from .state import IN_FLIGHT, JobState

    unanswered = counts.get(JobState.SUBMITTING.value, 0)
    return sum(counts.get(s.value, 0) for s in IN_FLIGHT) - unanswered, unanswered


def _selection_flags(sp: argparse.ArgumentParser, what: str) -> None:
    """`--key GLOB` and `--code CODE`, each repeatable: the jobs a retry sends again (`RunOptions.only_keys`,
    `only_codes`); the others stay as they are, as a plain run leaves them."""
    sp.add_argument("--key", action="append", metavar="GLOB",
                    help=f"{what} only the jobs whose whole key matches GLOB (shell-style: 'style=anime,*', "
                         "'*,seed=[12]'); repeat for more")
    sp.add_argument("--code", action="append", metavar="CODE",
                    help=f"{what} only the jobs whose last error has the provider's code CODE "
                         "(e.g. INTERNAL_ERROR); repeat for more")


def _selection_said(diff: Any, keys: Sequence[str] | None, codes: Sequence[str] | None,
                    command: str = "retry") -> list[str]:
    """What `plan --retry --key/--code` warns of the selection (`options.selection_misses`): that `gridrun retry`
    (`command`, with --unknown) would refuse it, picking no job, or each glob or code of it that picks none."""
    from .options import selection_misses

    refusal, misses = selection_misses(diff.retry_candidates, tuple(keys or ()), tuple(codes or ()), command)
    return [f"`gridrun {command}` would refuse: {refusal}"] if refusal is not None else misses


def cmd_retry(args: argparse.Namespace) -> int:
    """`gridrun retry`: a run that sends failed, rejected, expired and cancelled jobs again; with --unknown,
    instead, one that sends again the jobs of unknown outcome (`cmd_run` warns that they may pay twice)."""
    return cmd_run(args, retry_failed=not args.unknown, retry_unknown=args.unknown,
                   only_keys=tuple(args.key or ()), only_codes=tuple(args.code or ()))


def _unknown_warning(unknown: int) -> str:
    """What `retry --unknown` warns of before it sends the `unknown` jobs of unknown outcome again."""
    return (f"{_jobs(unknown)} of unknown outcome may already have been paid for; each "
            "is sent again with its own idempotency key where the provider honours keys, and a provider that still "
            "remembers the key answers with the video it made, at no cost, but one that has forgotten it (a key "
            "past its dedup window, which gridrun would not send on its own) or ignores keys makes and bills a "
            "second video")


def _status_manifest(args: argparse.Namespace) -> None:
    """`args.manifest`, the manifest `status` reads the state of, loaded once (`api.status_manifest`: a file that
    does not load is taken as the state beside it recorded it, as `cancel` takes it, with a warning)."""
    from . import api
    from .manifest import Manifest

    if args.manifest is None or isinstance(args.manifest, Manifest):
        return
    args.manifest_file = args.manifest  # as given, for the messages that name it (`_manifest_given`)
    args.manifest, warning = api.status_manifest(args.manifest)
    args.warnings = [warning] if warning else []  # in `status --json` too
    if warning:
        err.print(f"warning: {visible(warning)}", markup=False, highlight=False)


def _refuse_invalid(manifest: Manifest | None) -> None:
    """Where the state records no run of `manifest`: its errors, if it does not plan (raised, exit 2), as `run`
    and `plan` give them; rather than the advice to run it, or a watch's wait for a run that would be refused.
    A manifest read as the state recorded it (`Manifest.unread`) has runs recorded: it is not planned here."""
    from . import api
    from .errors import ManifestError
    from .manifest import Manifest

    if not isinstance(manifest, Manifest) or manifest.unread:
        return
    try:
        api.plan(manifest)
    except (ManifestError, ManifestErrors):
        raise
    except GridrunError:  # not the manifest's own errors (a file of the environment): the run says those
        return


def cmd_status(args: argparse.Namespace) -> int:
    from . import api
    from .export import dumps
    from .plan import relpath
    from .stats import pace

    if not args.watch:  # a watch loads it as it starts, its refusal one of its lines (--json)
        _status_manifest(args)
    if args.manifest_copy is not None:
        try:
            path = api.manifest_copy_file(args.manifest, args.manifest_copy, state_dir=args.state)
        except CopyNotWrittenError as exc:
            if not exc.text:
                raise
            # written nowhere but in the manifest's own output folder: its text, as the state keeps it, instead
            err.print(f"{visible(str(exc))}; its text, as the state keeps it, follows on stdout (save it as a "
                      "manifest file to put the manifest back as that run had it)", markup=False, highlight=False)
            _say(exc.text.removesuffix("\n"))
            return 0
        out.print(f"run {args.manifest_copy}'s manifest copy: {visible(relpath(path))}", markup=False,
                  highlight=False)
        return 0
    if args.watch:
        return _watch(args)
    try:
        if args.runs:
            return _runs(args)
        snap = api.status(args.manifest, state_dir=args.state)
    except RunStartingError as exc:
        return _say_starting(args, exc.pid)
    except NotRecordedError:
        _refuse_invalid(args.manifest)
        raise
    # no manifest given: the latest run of any manifest of the state, whose file the commands proposed name
    # a run's copy of its manifest given, read as that run: its commands name the run's file too (a copy is refused)
    unnamed = args.manifest is None or _read_from_copy(args.manifest)
    said: Callable[[str], str] = (lambda text: _of_file(text, snap)) if unnamed else (lambda text: text)
    missing = _missing_videos(snap, args.manifest)
    unlooked = _unlooked_videos(snap)
    if args.json:
        if getattr(args, "warnings", None) or unlooked:
            looked = [said(_unlooked_note(unlooked))] if unlooked else []
            snap = dataclasses.replace(snap, warnings=list(dict.fromkeys([*getattr(args, "warnings", ()),
                                                                          *snap.warnings, *looked])))
        advice, note = _status_next(args, snap, unnamed=unnamed)
        live = _status_live(args, snap)
        stale = None if snap.run.ended_at is None else _out_of_date_page(snap.run.outputs_dir, snap.run.id,
                                                                          _status_file(args, snap))
        _say(dumps({
            # a gone run a run of the manifest as it is now refuses to resume: its note proposes no `gridrun run`
            **api.status_json(snap, resumes=advice is None),
            # what `gridrun status` says to run next (its `next:` line), of a run that ended, or of one gone
            # whose resume a run of the manifest as it is now refuses (that refusal); null: nothing to run
            "next": None if advice is None else advice.text,
            # the steps of it to run, in its order, as they would be typed: each naming the manifest
            "next_commands": [] if advice is None else _typed_commands(advice.commands, _status_file(args, snap)),
            # what `gridrun status` notes below it: the manifest file changed since the run (null: it did not)
            "next_note": note,
            # the run of this manifest going on this moment (its process holds the state's lock); null: none
            "live_run": None if live is None else live.as_json(_manifest_given(args) or _run_manifest(snap)),
            # done jobs whose video is no longer at its path (deleted or moved out of the output folder)
            "missing_videos": [{"key": key, "path": path} for key, path in missing],
            "missing_videos_note": None if not missing else said(_missing_note(missing)),
            # the page in the run's output folder the run, ended, left out of date (not written over: a full disk, a
            # Ctrl-C), as `gridrun status` warns of it, with the command that writes it again; null: none
            "report_out_of_date": None if stale is None else {"path": str(stale[0]), "command": stale[1],
                                                               "message": stale[2]},
        }, indent=2))
        return 0
    for warning in snap.warnings:  # those of the state read (a run going on under the name it started with)
        if warning not in getattr(args, "warnings", ()):
            err.print(f"warning: {visible(warning)}", markup=False, highlight=False)
    r = snap.run
    if (live := _status_live(args, snap)) is not None and live.run_id != r.id:
        # another run than the one shown, starting (not recorded yet): what it sends is its own plan's
        err.print(f"[yellow]note[/yellow]: {escape(live.note(_manifest_given(args) or _run_manifest(snap)))}")
    c = {k: v for k, v in snap.counts.items() if v}
    started = local_time(r.started_at)
    stopping = r.ended_at is None and snap.stopping and not r.process_gone()
    state = f"stopping ({escape(snap.stopping or '')})" if stopping else _status_shown(r)
    out.print(f"[bold]{escape(r.manifest_name)}[/bold] run {r.id} ({state}, started {started}) — {_jobs(len(snap.jobs))}")
    out.print("  " + ", ".join(f"{k} {v}" for k, v in c.items()))
    if r.stopped_note:
        out.print(f"  {r.stopped_note}", markup=False, highlight=False)
    if not unnamed and (elsewhere := _made_from_another_file(r, args.manifest)) is not None:
        out.print(f"  {elsewhere}", markup=False, highlight=False)
    if rerendering := sum(1 for j in snap.jobs if j.earlier is not None):
        out.print(f"  {_rerendering_note(rerendering)}", markup=False, highlight=False)
    budget = "" if r.budget_micros is None else f" of {usd_text(r.budget_micros)}"
    out.print(f"  spent {usd_text(snap.spent_micros)}, reserved {usd_text(snap.reserved_micros)}{budget}")
    # the provider and model said of every run, one that sent nothing included
    out.print(f"  {snap.sent_to_note() or snap.provider_note()}", markup=False, highlight=False)
    if (followed := snap.followed_note()) is not None:
        out.print(f"  {followed}", markup=False, highlight=False)
    if (above := snap.billed_above_note()) is not None:
        out.print(f"  [bold yellow]warning[/bold yellow]: {escape(above)}")
    if (ignored := snap.keys_ignored_note()) is not None:
        out.print(f"  [bold yellow]warning[/bold yellow]: {escape(ignored)}")
    if (over := snap.over_budget_note()) is not None:
        out.print(f"  [yellow]{escape(over)}[/yellow]")
    if (snap.manifest_spent_micros, snap.manifest_reserved_micros) != (snap.spent_micros, snap.reserved_micros):
        out.print(f"  all runs of {escape(r.manifest_name)}: spent {usd_text(snap.manifest_spent_micros)}, "
                  f"reserved {usd_text(snap.manifest_reserved_micros)}")
        if (simulated := snap.simulated_note()) is not None:
            out.print(f"    {simulated}", markup=False, highlight=False)
    if snap.left_unknown:
        out.print(f"  {said(_left_unknown_note(snap))}", markup=False, highlight=False)
    if snap.possibly_billed:
        out.print(f"  {said(_possibly_billed_note(snap))}", markup=False, highlight=False)
    if snap.left_rendering:
        out.print(f"  {said(_left_rendering_note(snap))}", markup=False, highlight=False)
    if snap.left_rendered:
        out.print(f"  {_left_rendered_note(snap)}", markup=False, highlight=False)
    from .progress import (
        fmt_answered,
        fmt_eta,
        fmt_next_check,
        fmt_paused,
        fmt_rate,
        fmt_time,
    )
    from .stats import checks, eta_expected, pause_left

    elapsed, per_minute, eta = pace(snap)
    gone = r.process_gone()
    rate = "" if per_minute is None else f", {fmt_rate(per_minute)}" + ("" if r.ended_at is not None else " lately")
    if r.ended_at is not None:
        out.print(f"  {fmt_time(elapsed)} taken{rate}")
    elif gone:  # its time up to the last thing it recorded: it has no ETA
        out.print(f"  {fmt_time(elapsed)} elapsed up to its last record{rate}")
    else:
        # what the run last recorded of its talk with the provider: through long renders, its sign of life
        wait, since = checks(snap)
        heard = "" if since is None else f", {fmt_answered(since)}"
        heard += "" if wait is None else f", {fmt_next_check(wait)}"
        paused = pause_left(snap)
        heard += "" if paused is None else f", {fmt_paused(paused, snap.paused_by or 429)}"
        # an estimate, as the run's own progress marks it (`progress.fmt_eta_of`)
        shown = f"~{fmt_eta(eta)}" if eta is not None and eta_expected(snap) else fmt_eta(eta)
        out.print(f"  {fmt_time(elapsed)} elapsed{rate}, eta {shown}{heard}")
    advice, note = _status_next(args, snap, unnamed=unnamed)
    if gone:
        # a run of the manifest as it is now refusing to start (the step below): no `gridrun run` proposed here
        out.print(f"  [yellow]{escape(said(r.gone_note(left=_jobs_left(snap.counts), unknown=snap.counts.get('unknown', 0), resumes=advice is None)))}[/yellow]")
        if snap.force_unsent:  # after that free step, the re-renders a --force run left, not those it made
            out.print(f"  then: {said(_force_unsent_next(snap).text)}", markup=False, highlight=False)
    if snap.sent_elsewhere and r.ended_at is None:  # said with what to run next, of a run that ended
        out.print(f"  [yellow]{escape('; '.join(_sent_elsewhere_steps(snap)))}[/yellow]")
    if snap.sent_with_key and r.ended_at is None:
        out.print(f"  [yellow]{escape('; '.join(_sent_with_key_steps(snap)))}[/yellow]")
    if snap.sent_anew and r.ended_at is None:
        out.print(f"  [yellow]`gridrun run` {escape(_sent_anew(snap))}[/yellow]")
    _problems(snap)
    if snap.rerenders_cancelled:
        out.print(f"  {said(_rerenders_note(snap.rerenders_cancelled))}", markup=False, highlight=False)
    if snap.rerenders_failed:
        out.print(f"  {said(_rerenders_failed_note(len(snap.rerenders_failed)))}", markup=False, highlight=False)
        for who, error in _alike(snap.rerenders_failed):
            out.print(f"    {who}: {error}", markup=False, highlight=False)
    if snap.placeholders_failed:
        out.print(f"  {said(placeholders_failed_note(len(snap.placeholders_failed)))}", markup=False,
                  highlight=False)
    if missing:
        out.print(f"  [yellow]warning[/yellow]: {escape(said(_missing_note(missing)))}")
    if unlooked:
        out.print(f"  [yellow]warning[/yellow]: {escape(said(_unlooked_note(unlooked)))}")
    if r.ended_at is not None and (stale := _out_of_date_report(r.outputs_dir, r.id, _status_file(args, snap))):
        out.print(f"  [yellow]warning[/yellow]: {escape(stale)}")
    if advice is not None:
        out.print(f"  next: {escape(advice.text)}")
    if note is not None:
        out.print(f"  [yellow]note[/yellow]: {escape(note)}")
    return 0


def _status_next(args: argparse.Namespace, snap: Snapshot, *, unnamed: bool) -> tuple[Advice | None, str | None]:
    """What `status` says to run next after the ended run of `snap` (its `next:` line), and the note it gives below
    it: built from the state, or, where the manifest given was edited since that run (or a data file it reads no
    longer holds the row of a job in flight, or a local input image a job in flight sent differs now), planned as
    it is now (a run of it would refuse to start: that refusal's way out is the step; else a note that the steps
    are of the manifest as the run had it). Of a run whose process is gone without recording its end (killed,
    crashed), only that refusal, planned on the same signs, where its line would say a run resumes it; (None,
    None) otherwise, and of a run going on."""
    from .manifest import Manifest

    r = snap.run
    gone = r.ended_at is None and r.process_gone()
    if r.ended_at is None and not gone:
        return None, None
    now = None
    if (not unnamed and isinstance(args.manifest, Manifest) and not getattr(args, "warnings", None)
            and r.id == snap.manifest_latest_run and _unfinished(snap.counts)
            and (not _as_run_had_it(args.manifest, r) or _rows_gone(args.manifest, snap)
                 or _images_changed(args.manifest, snap))):
        now = _manifest_now(args.manifest, r.id)
    elif (not unnamed and isinstance(args.manifest, Manifest) and not getattr(args, "warnings", None)
            and r.id == snap.manifest_latest_run and r.ended_at is not None and not _unfinished(snap.counts)
            and not _as_run_had_it(args.manifest, r)):
        now = _manifest_now(args.manifest, r.id, finished=True)  # no steps: what a run of it as it is now sends
    if now is not None and now[0]:  # the steps of the state alone would lead to a run that refuses
        # its ways on (the manifest put back by hand, or jobs paid for left behind) are a choice: no command to run
        return Advice(now[1]), None
    if gone:  # its line says what to run: a run resumes it
        return None, None
    return _next_text(snap, unnamed=unnamed), None if now is None else now[1]


# The commands that take a manifest file, named after the command's name: `gridrun run x.yaml --force`.
_TAKES_MANIFEST = frozenset({"run", "retry", "cancel", "plan", "report", "export"})


def _typed_commands(commands: Iterable[str], manifest: str) -> list[str]:
    """`commands` (`Advice.commands`) as they would be typed: those of gridrun that take a manifest file and are
    written without it naming `manifest` (a path, quoted for the shell by `typed`) after the command's name."""
    m = typed(manifest)
    typed_out = []
    for command in commands:
        words = command.split(" ", 2)
        if len(words) >= 2 and words[0] == "gridrun" and words[1] in _TAKES_MANIFEST:
            command = " ".join([*words[:2], m, *words[2:]])
        typed_out.append(command)
    return typed_out


def _status_file(args: argparse.Namespace, snap: Snapshot) -> str:
    """The manifest file the commands `status` proposes name: the one given, as given; else (none given, or a run's
    copy of it, `_read_from_copy`) the run's, relative to the current folder (`_run_manifest`)."""
    from .manifest import Manifest

    given = getattr(args, "manifest_file", None)
    if (isinstance(given, str) and isinstance(args.manifest, Manifest) and not _read_from_copy(args.manifest)):
        return given
    return _run_manifest(snap)


def _status_live(args: argparse.Namespace, snap: Snapshot) -> Any:
    """The run going on this moment that `status` reads (`api.LiveRun`), or None: of the manifest given, as `plan`
    finds it (a run starting too); else the run shown, where it has not ended and its process is there."""
    from . import api
    from .manifest import Manifest

    if isinstance(args.manifest, Manifest) and not args.manifest.unread and getattr(args, "state", None) is None:
        return api.live_run(args.manifest)
    r = snap.run
    if r.ended_at is not None or not r.pid or r.process_gone():
        return None
    return api.live_of(snap)


def _run_manifest(snap: Snapshot) -> str:
    """The manifest file of the run of `snap`, relative to the current folder, as the commands proposed name it:
    where it is now, the project folder moved since (`_now_at`)."""
    from .plan import relpath

    return relpath(_now_at(snap, snap.run.manifest_path))


def _missing_videos(snap: Snapshot, manifest: Any = None) -> list[tuple[str, str]]:
    """The done jobs of `snap` whose video is no longer at its path (deleted or moved out of the output folder since
    it was saved), (key, path): one look at each path, none at the files' contents. A project folder moved or renamed
    since the run (the manifest, or the state's own `.gridrun/`, in another folder than the run's manifest was) keeps
    its videos at the same place in it, where a run finds them: a video found there is not missing. The state's own
    folder tells only where the run's folder is gone (a `state_dir:` shared from elsewhere does not move with it).
    A path this process cannot name (`_unlooked_videos`) is not looked at: it is not said missing."""
    from .localpaths import unnameable

    missing = [(j.key, j.output_path) for j in snap.jobs if j.state == "done" and j.output_path
               and unnameable(j.output_path) is None and not os.path.lexists(j.output_path)]
    if not missing:
        return missing
    then = Path(os.path.abspath(snap.run.manifest_path)).parent
    given = getattr(manifest, "path", manifest)  # the manifest as loaded, or its path as given
    now = {Path(os.path.abspath(given)).parent} if isinstance(given, (str, os.PathLike)) else set()
    if (project := _moved_project(snap)) is not None:
        now.add(project)
    moved = [base for base in now if base != then]
    if not moved:
        return missing

    def now_at(path: str) -> str | None:
        """Where the video is now, or is to be (the moved folder's place for it); None: found there."""
        try:
            inside = Path(os.path.abspath(path)).relative_to(then)
        except ValueError:
            return path
        if any(os.path.lexists(base / inside) for base in moved):
            return None
        return str(moved[0] / inside)

    return [(key, at) for key, path in missing if (at := now_at(path)) is not None]


def _moved_project(snap: Snapshot) -> Path | None:
    """Where the folder of the run of `snap` is now, moved or renamed since the run: the folder holding the state's
    own `.gridrun/`, moved with it, while the run's manifest file and the `.gridrun/` beside it are gone (a
    `state_dir:` elsewhere leaves the run's folder where it was); None when it did not move, or that is not known.
    The old folder itself may be there again: a run going on while its project moved writes its videos where it
    started."""
    then, folder = Path(os.path.abspath(snap.run.manifest_path)).parent, getattr(snap.run, "state_folder", None)
    if (folder is None or Path(folder).name != ".gridrun" or os.path.isfile(snap.run.manifest_path)
            or os.path.lexists(then / ".gridrun")):
        return None
    now = Path(folder).parent
    return None if now == then else now


def _now_at(snap: Snapshot, recorded: str) -> Path:
    """A path the run of `snap` recorded (its manifest file, its output folder) where it is now: as recorded while
    the run's manifest file is there, or, the project folder moved since (`_moved_project`), at the same place in
    it."""
    path = Path(recorded)
    if os.path.isfile(snap.run.manifest_path) or (project := _moved_project(snap)) is None:
        return path
    try:
        return project / Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(snap.run.manifest_path)).parent)
    except ValueError:  # not in the manifest's folder
        return path


def _run_files_now(snap: Snapshot) -> tuple[Path, Path]:
    """The manifest file and the output folder of the run of `snap` where they are now (`_now_at`)."""
    return _now_at(snap, snap.run.manifest_path), _now_at(snap, snap.run.outputs_dir)


def _unlooked_videos(snap: Snapshot) -> list[str]:
    """The paths of the done jobs' videos this process cannot name to the system (`localpaths.unnameable`: a name
    beyond ASCII where the locale's file-name encoding is not UTF-8), which `_missing_videos` does not look at."""
    from .localpaths import unnameable

    return [j.output_path for j in snap.jobs if j.state == "done" and j.output_path and unnameable(j.output_path)]


def _unlooked_note(paths: Sequence[str]) -> str:
    """What `status` says of the videos it could not look for (`_unlooked_videos`): the locale's doing, and its fix;
    not that they are gone."""
    from .localpaths import unnameable
    from .plan import relpath

    n = len(paths)
    shown = ", ".join(visible(relpath(Path(path))) for path in paths[:3]) + (f" and {n - 3:,} more" if n > 3 else "")
    why = (unnameable(paths[0]) or "").removeprefix("its ")
    first = "its" if n == 1 else "the first's"
    return (f"{_jobs(n).replace('job', 'video', 1)} of jobs done could not be looked for ({shown}), not said gone: "
            f"{first} {why}")


def _missing_note(missing: Sequence[tuple[str, str]]) -> str:
    """What `status` says of the done jobs whose video is no longer at its path (`_missing_videos`): how many, the
    first few paths, and the free way back, as a run's end says it of videos removed while it went on."""
    from .plan import relpath

    n = len(missing)
    paths = [relpath(Path(path)) for _, path in missing[:3]]
    shown = ", ".join(map(visible, paths)) + (f" and {n - 3:,} more" if n > 3 else "")
    return (f"{_jobs(n).replace('job', 'video', 1)} of jobs done {'is' if n == 1 else 'are'} no longer in the output "
            f"folder ({shown}): `gridrun run` fetches {_them(n)} again at no cost while the provider keeps "
            f"{_them(n)} (the report marks {_them(n)} missing)")


def _removed_during(plan: Plan) -> list[str]:
    """The keys of the plan's jobs done whose video is no longer at its path (deleted from the output folder while
    the run went on); the state read only when a planned path holds no file."""
    from . import api

    if all(os.path.lexists(j.output_str) for j in plan.jobs):
        return []
    try:
        snap = api.status(plan.manifest)
    except (GridrunError, OSError, sqlite3.Error):
        return []
    return [j.key for j in snap.jobs if j.state == "done" and not os.path.lexists(j.output_path)]


def _as_run_had_it(m: Manifest, r: RunRecord) -> bool:
    """Whether the manifest `m` reads as the copy run `r` made of it (`.runs/run-N.yaml`): the steps built from the
    state are then the manifest's as it is, with no need to plan it again; False when the copy cannot be read."""
    from .yamlsource import MAX_BYTES, read_text

    try:
        return bool(m.text) and read_text(Path(r.outputs_dir) / ".runs" / f"run-{r.id}.yaml",
                                          limit=MAX_BYTES) == m.text
    except (GridrunError, OSError, ValueError):
        return False


def _flying(snap: Snapshot) -> list[Any]:
    """The jobs of `snap` in flight (sent, not settled)."""
    from .state import IN_FLIGHT

    flying = {s.value for s in IN_FLIGHT}
    return [j for j in snap.jobs if j.state in flying]


def _rows_gone(m: Manifest, snap: Snapshot) -> bool:
    """Whether a data file the manifest `m` (as the run of `snap` had it) reads no longer holds the row of a job
    that run left in flight: a run of it refuses to start over that job (`resume.left_behind`)."""
    from .resume import rows_gone

    return bool(m.data_lines) and rows_gone(m, (j.values for j in _flying(snap)))


def _images_changed(m: Manifest, snap: Snapshot) -> bool:
    """Whether a local input image a job the run of `snap` left in flight sent differs now from what the state
    recorded of it (the file edited or replaced since): a run of the manifest `m` refuses to start over that job."""
    from .resume import images_changed

    return images_changed(m, {j.id for j in _flying(snap)})


def _manifest_now(m: Manifest, run_id: int, *, finished: bool = False) -> tuple[bool, str] | None:
    """What the manifest `m`, as it is now, changes in the steps said after run `run_id`, which are built from the
    state (the manifest as that run had it), planned against the state as `plan` plans it: (True, the step) when a
    run of it refuses to start over jobs of that run left in flight that it no longer has, with the ways on
    `plan` and `run` give; (False, a note) when jobs differ from that run (a retry, say, would send them as they
    are now). `finished`: run `run_id` left nothing to do, so no steps are said above: the note says what a run of
    the manifest as it is now sends, and what that costs. None when nothing differs, or it cannot be planned."""
    from . import api

    try:
        p = api.plan(m)
        d = api.diff(p)
    except (GridrunError, OSError, sqlite3.Error):
        return None
    if d is None:
        return None
    left = d.left_behind
    if left is not None and left.run_id == run_id:
        return True, f"`gridrun run` of the manifest as it is now refuses to start: {left.message()}"
    if d.changed and d.previous_run == run_id and finished:
        sent = [j for j in p.jobs if j.key in set(d.changed) and d.sends(j.key)]
        n = len(sent)
        then = (f"`gridrun run` sends {'it' if n == 1 else 'them'} as {'it is' if n == 1 else 'they are'} now, "
                f"{usd_text(sum(j.cost_micros for j in sent))} (`gridrun plan` shows what each sends and costs)"
                if n else "`gridrun run` puts their videos in place at no new cost")
        return False, f"the manifest changed since run {run_id}: {_differ(d).removeprefix('; ')}; {then}"
    if d.changed and d.previous_run == run_id:
        n = len(d.changed)
        return False, (f"the manifest changed since run {run_id}: {_differ(d).removeprefix('; ')}; the steps "
                       f"above are of the manifest as run {run_id} had it, and a run or retry of it as it is now "
                       f"sends {'that job' if n == 1 else 'those jobs'} as {'it is' if n == 1 else 'they are'} now "
                       "(`gridrun plan`, `gridrun plan --retry` show what each sends and costs)")
    return None


def _manifest_edited(m: Manifest) -> Manifest | None:
    """The manifest file `m` was loaded from, loaded again when its text is no longer the one `m` was read from (an
    edit while its run went on); None when it is the same, or does not load."""
    from . import api

    from .yamlsource import MAX_BYTES, read_text

    if not m.text:
        return None
    try:
        if read_text(Path(m.path), limit=MAX_BYTES) == m.text:
            return None
        return api.load(m.path)
    except (GridrunError, OSError, ValueError):
        return None


def _read_from_copy(m: Manifest) -> bool:
    """`m` was read from a run's copy of its manifest (`.runs/run-N.yaml`, `api.status_manifest`) as the file that
    run was made from: the commands proposed name that file, as with no manifest given, for plan, run and retry
    refuse the copy itself."""
    return bool(m.display) and _a_runs_copy(m.display, m.path)


def _a_runs_copy(given: str | Path, made_from: str | Path) -> bool:
    """Whether the file `given` is a run's copy of its manifest (`.runs/run-N.yaml`) standing for `made_from`, the
    file that run was made from."""
    shown = Path(os.path.abspath(given))
    return shown.parent.name == ".runs" and shown != Path(made_from)


def _made_from_another_file(run: Any, manifest: Any) -> str | None:
    """The line `status` gives a run made from another manifest file than the one given (a path, or the manifest
    loaded from it), still there (another checkout whose manifest names this `state_dir:`): which file, and the
    folder it wrote; None for a run of this file, or of one gone (the project moved)."""
    given = getattr(manifest, "path", manifest)
    try:
        if not os.path.isfile(run.manifest_path) or os.path.samefile(run.manifest_path, given):
            return None
    except OSError:
        return None
    return visible(f"run {run.id} was made from {run.manifest_path}, not this manifest file (another checkout "
                   f"sharing this state, say), writing into {run.outputs_dir}")


def _say_starting(args: argparse.Namespace, pid: int) -> int:
    """`status` of a manifest with no run recorded while a run is starting (`api.run_starting`): it holds the
    state's lock, or is planning before it takes it, and records its run once it has planned and asked the
    provider's balance (up to a few seconds). Said as the run's state, not as an error: `gridrun run`, refused
    the lock meanwhile, says that `status` works."""
    from .export import dumps

    name = None if args.manifest is None else args.manifest.name
    if args.json:
        _say(dumps([] if args.runs else {"run": None, "manifest": name, "status": "starting", "pid": pid},
                   indent=2))
        return 0
    title = "no run recorded yet" if name is None else f"[bold]{escape(name)}[/bold]: no run recorded yet"
    out.print(f"{title}; a run is starting (pid {pid}), recorded once it has planned and asked the provider's "
              "balance: `gridrun status` again in a moment, or `--watch` to follow it")
    return 0


def _say_next(snap: Snapshot, *, unnamed: bool = False) -> None:
    """`next:` and what to run next after the ended run of `snap` (`_next_text`), where there is something."""
    if (then := _next_text(snap, unnamed=unnamed)) is not None:
        out.print(f"  next: {escape(then.text)}")


def _next_text(snap: Snapshot, *, unnamed: bool = False) -> Advice | None:
    """What to run next after the ended run of `snap`: for the jobs it left unfinished, or for the re-renders
    (--force) the manifest's latest --force run left done as they were (a stop: its budget, a full disk, a kill),
    the cheaper steps first; None: nothing. `unnamed`: no manifest was given (`status` shows the latest run of any
    manifest of the state), so each command names the run's manifest file."""
    then = None
    counts = _but_placeholders(snap.counts, len(snap.placeholders_failed))  # said with them
    if _unfinished(counts) or snap.stopping == "write-failed" and snap.run.status == "failed":
        unsaved = snap.run.outputs_dir if snap.stopping == "write-failed" else None
        then = _next_steps(counts, snap, budget=_manifest_budget(snap), unsaved=unsaved,
                           errors=[j.error for j in snap.jobs if j.error], gone=_gone(snap),
                           files_out=snap.stopping == "files-out")
        if snap.placeholders_left:
            then = _placeholders_next(snap).then(then, "; ")
    elif snap.placeholders_left:  # a stop left placeholders made elsewhere as they were: a plain run re-renders them
        then = _placeholders_next(snap)
    if snap.force_unsent:  # re-renders a --force run left as they were: after the rest, which may cost nothing
        redo = _force_unsent_next(snap)
        then = redo if then is None else then.then(redo)
    if then is None:
        return None
    return _of_file_advice(then, snap) if unnamed else then


def _force_unsent_next(snap: Snapshot) -> Advice:
    """`--force --resume` for the re-renders the manifest's latest --force run left unsent (`force_unsent`), at
    what they cost and what that run counts against its budget (the jobs never sent too)."""
    left = set(snap.force_unsent)
    cost = sum(j.cost_estimate_micros for j in snap.jobs if j.key in left)
    return _redo_forced(len(left), cost, cost + _unsent_micros(snap, but=left), _manifest_budget(snap),
                        by=f"run {snap.force_run}")


# A command a message proposes that takes the manifest file, written without it: "`gridrun run`", "`gridrun retry
# --unknown`" (not "`gridrun run x.yaml`"), the manifest's file to go after the command's name.
_UNNAMED = re.compile(r"`gridrun (run|retry|cancel|plan|report|export)(?=`| -)")


def _of_file(text: str, snap: Snapshot) -> str:
    """`text`, advice on the run of `snap` shown with no manifest given, each command in it naming the run's
    manifest file (relative to the current folder, quoted for the shell): a project's manifests share one state,
    and the run's `name:` alone does not say which file to run. A file no longer there is said first, with how to
    put it back as the run had it (its copy, .runs/run-N.yaml in the output folder): a copy is not run where it is
    (its own folder would be taken as a project of its own, which has run nothing)."""
    from .plan import relpath

    path, outputs = _run_files_now(snap)
    m = typed(relpath(path))
    text, named = _UNNAMED.subn(lambda found: f"`gridrun {found[1]} {m}", text)
    if not named or path.is_file():
        return text
    copy = outputs / ".runs" / f"run-{snap.run.id}.yaml"
    if copy.is_file():
        back = f"`cp {typed(relpath(copy))} {m}`"
    else:  # removed by hand (.runs/ tidied): the state keeps its text, which `--manifest-copy` gives
        back = f"`{_copy_from_state(snap, m)}` writes it from the text the state keeps"
    return f"{m} is no longer there: put it back as run {snap.run.id} had it first ({back}), then {text}"


def _of_file_advice(advice: Advice, snap: Snapshot) -> Advice:
    """`advice` (`Advice`) as `_of_file` says it: its text naming the run's manifest file, and the command that puts
    that file back first, where it is no longer there."""
    from .plan import relpath

    path, outputs = _run_files_now(snap)
    commands = advice.commands
    if commands and not path.is_file():
        m = typed(relpath(path))
        copy = outputs / ".runs" / f"run-{snap.run.id}.yaml"
        back = f"cp {typed(relpath(copy))} {m}" if copy.is_file() else _copy_from_state(snap, m)
        commands = (back, *commands)
    return Advice(_of_file(advice.text, snap), commands)


def _copy_from_state(snap: Snapshot, m: str) -> str:
    """The command that writes the manifest of the run of `snap` to `m` (as typed) from the text its state keeps:
    `status --manifest-copy` of the state folder, which, given no manifest, gives that text on stdout (given the
    manifest, not there, it would not load)."""
    from .plan import relpath

    folder = snap.run.state_folder
    state = f" --state {typed(relpath(Path(folder)))}" if folder is not None else ""
    return f"gridrun status{state} --manifest-copy {snap.run.id} > {m}"


def _placeholders_next(snap: Snapshot) -> Advice:
    """What a plain run does with the placeholders made at another endpoint that the run of `snap` left as they
    were, at what cost."""
    left = set(snap.placeholders_left)
    cost = sum(j.cost_estimate_micros for j in snap.jobs if j.key in left)
    return _redo_elsewhere(len(left), cost, cost + _unsent_micros(snap), _manifest_budget(snap))


def _left_rendering_note(snap: Snapshot) -> str:
    """What holds the part of the manifest's reserve that jobs earlier runs left rendering hold, which the run does
    not have (a run with --leave-in-flight left them): no run follows them, so they stay reserved until cancelled,
    or collected by the manifest put back as the run that sent them had it (`cancel` says that of those finished)."""
    left = snap.left_rendering
    one = len(left) == 1
    it = "it" if one else "them"
    live = snap.run.ended_at is None and not snap.run.process_gone()  # it holds the state: `cancel` refuses
    return (f"{usd_text(sum(m for _, _, m in left))} of it reserved by {_left_jobs(left)}, left in flight "
            f"({_left_keys(left)}): run {snap.run.id} does not have {it}, so no run follows {it}; `gridrun cancel` "
            f"cancels {it} at the provider{f' once run {snap.run.id} ends' if live else ''}, or "
            f"{_put_back(snap, left, 'collect')}")


def _left_unknown_note(snap: Snapshot) -> str:
    """What holds the part of the manifest's reserve that jobs of unknown outcome earlier runs sent hold, which the
    run's own reserve does not count (they may have been paid, by the run that sent them): `gridrun retry
    --unknown` settles them, those the manifest no longer has once it is put back as the run that sent them had it."""
    from .state import no_request_log

    left = snap.left_unknown
    it = "it" if len(left) == 1 else "them"
    runs = ", ".join(map(str, sorted({run for _, run, _ in left})))
    has = {j.key for j in snap.jobs}
    dropped = [row for row in left if row[0] not in has]
    retry = "`gridrun retry --unknown` on that"
    if not dropped:
        how = f"`gridrun retry --unknown` settles {it}"
    elif len(dropped) == len(left):
        how = f"the manifest no longer has {it}: {_put_back(snap, dropped, 'settle', command=retry)}"
    else:
        how = (f"`gridrun retry --unknown` settles the {_jobs(len(left) - len(dropped))} the manifest has; for the "
               f"{_jobs(len(dropped))} it no longer has, {_put_back(snap, dropped, 'settle', command=retry)}")
    # jobs the last lookup found no request log for (`state.no_request_log`): looked up again, the log may answer now
    unchecked = {j.key for j in snap.jobs if no_request_log(j.state, j.error)}
    if all(key in unchecked for key, _, _ in left):
        looked = (f"each looked up by its key (free), else sent again (may pay twice): the provider had no request "
                  f"log to look {it} up in when gridrun last asked, so gridrun could not check whether "
                  f"{'it was' if len(left) == 1 else 'they were'} made (its dashboard or billing can)")
    else:
        looked = "each looked up by its key (free), else sent again (may pay twice)"
    return (f"{usd_text(sum(m for _, _, m in left))} of it reserved by {_jobs(len(left))} of unknown outcome run "
            f"{runs} sent ({_left_keys(left)}), which may have been paid: run {snap.run.id}'s reserve does not count "
            f"{it}; {how}, {looked}")


def _left_rendered_note(snap: Snapshot) -> str:
    """Jobs earlier runs sent that the provider rendered and that are paid for, not downloaded (`cancel` found them
    finished, or a run stopped fetching them), which the run does not have: only the manifest put back as the run
    that sent them had it downloads them."""
    left = snap.left_rendered
    one = len(left) == 1
    it = "it" if one else "them"
    return (f"{_left_jobs(left)} rendered and paid ({usd_text(sum(m for _, _, m in left))}), not downloaded "
            f"({_left_keys(left)}): run {snap.run.id} does not have {it}; {_put_back(snap, left, 'download')}")


def _left_jobs(left: Sequence[tuple[str, int, int]]) -> str:
    """The jobs of `left` (key, run, micros) and the runs that sent them ("2 jobs run 1 sent")."""
    return f"{_jobs(len(left))} run {', '.join(map(str, sorted({run for _, run, _ in left})))} sent"


def _possibly_billed_note(snap: Snapshot) -> str:
    """The attempts of unknown outcome `retry --unknown` sent again (`Snapshot.possibly_billed`): in no figure of
    spent or reserved, yet the provider may have billed them."""
    return snap.possibly_billed_note(visible) or ""


def _left_keys(left: Sequence[tuple[str, int, int]]) -> str:
    """The first three keys of `left`, and how many more; a key's characters that act on a terminal escaped."""
    return ", ".join(visible(key) for key, _, _ in left[:3]) + (f" and {len(left) - 3:,} more" if len(left) > 3 else "")


def _put_back(snap: Snapshot, left: Sequence[tuple[str, int, int]], verb: str, *, command: str = "that") -> str:
    """How to `verb` the jobs of `left`: put the manifest back as the run (each run) that sent them had it, its copy
    copied back to the manifest's file (planned where it is, in `.runs/`, a copy is refused: `api.refuse_run_copy`),
    and run that (`command`: what to run), as `cancel` says of those it found finished; a path's characters that act
    on a terminal escaped."""
    from .plan import relpath

    runs = sorted({run for _, run, _ in left})
    copies = ", ".join(visible(relpath(Path(snap.left_copies[r]))) if r in snap.left_copies
                       else f"run {r}'s" for r in runs)
    them = "it" if len(left) == 1 else "them"
    missing = [r for r in runs if r in snap.copies_missing]
    if missing:  # removed by hand (.runs/ tidied): the state keeps its text, which `--manifest-copy` writes again
        m = typed(relpath(_now_at(snap, snap.run.manifest_path)))
        ones = "it is" if len(missing) == 1 else "they are"
        copies += (f"; {ones} missing: `gridrun status {m} --manifest-copy "
                   f"{' / '.join(map(str, missing))}` writes {'it' if len(missing) == 1 else 'each'} again from the state")
    back = visible(relpath(_now_at(snap, snap.run.manifest_path)))
    back = f"copy it back to {back}" if len(runs) == 1 else f"copy each back to {back} in turn"
    return f"put the manifest back as the run that sent {them} had it ({copies}): {back} and run {command} to {verb} {them}"


def _runs(args: argparse.Namespace) -> int:
    """`status --runs`: the manifest's runs, newest first (every run of the state folder without a manifest), with
    the ids that `report --run` and `--compare` take."""
    from rich.table import Table

    from . import api
    from .export import dumps

    found = api.runs(args.manifest, state_dir=args.state)
    every = len(found)
    last = getattr(args, "last", None)
    if last is None and not args.json:  # a script reading --json gets every run unless it asks for fewer
        last = RUNS_SHOWN
    found = found if not last else found[:last]  # newest first
    if args.json:
        rows = [{**row, "started_with": _started_with(s.run.argv)} for row, s in zip(api.runs_json(found), found)]
        _say(dumps(rows, indent=2))
        return 0
    names = dict.fromkeys(s.run.manifest_name for s in found)
    several = args.manifest is None and len(names) > 1
    title = "runs of the state folder" if several else f"[bold]{escape(next(iter(names)))}[/bold]"
    shown_of = f", the newest {len(found):,} shown (--last)" if len(found) < every else ", newest first"
    out.print(f"{title}: {every:,} run{'s' if every != 1 else ''}{shown_of}")
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("run", justify="right", no_wrap=True)
    if several:
        table.add_column("manifest", overflow="fold")
    # Each start with its offset from UTC (a DST change between runs, a state read in another zone); said once,
    # in the header, when every run's is the same.
    offsets = {utc_offset(s.run.started_at) for s in found}
    one_offset = len(offsets) == 1
    table.add_column(f"started ({next(iter(offsets))})" if one_offset else "started", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("done")  # its counts go on in the next line, at a comma, where the table is too wide
    table.add_column("spent", justify="right", no_wrap=True)
    table.add_column("started with", overflow="fold", min_width=len("started with"))  # its header never cut
    for s in found:
        r = s.run
        status = _status_shown(r) + (", all done since" if s.all_done_since else "")
        done = (f"{s.done:,}/{s.jobs:,}" + (f", {s.cached:,} cached" if s.cached else "")
                + (f", {s.made_earlier:,} made earlier" if s.made_earlier else "")
                + (f", {s.not_copied:,} not copied" if s.not_copied else ""))
        cells = [str(r.id), *([r.manifest_name] if several else []),
                 local_time(r.started_at, offset=not one_offset), status, done,
                 usd_text(s.spent_micros)
                 + (f" ({usd_text(s.over_budget_micros)} over budget)" if s.over_budget_micros else ""),
                 _started_with(r.argv) or "–"]
        table.add_row(*_cells(cells))
    _print_table(table)
    if simulated := [s for s in found if s.spent_simulated_micros]:  # a note, on standard error: the table's lines
        # stay its rows
        ids = [str(s.run.id) for s in simulated]
        named = ids[0] if len(ids) == 1 else f"{', '.join(ids[:-1])} and {ids[-1]}"
        err.print(f"spent at a simulator, all or part (made-up figures, nothing paid): run{'s' if len(ids) > 1 else ''} "
                  f"{named} (`--json`: spent_simulated_usd)", markup=False, highlight=False)
    for s in found:  # what each run that stopped on a cause of its own (a full disk) says to do, as --json gives it
        if note := s.run.stop_cause(resumes=False)[1]:
            out.print(f"run {s.run.id} {note}", markup=False, highlight=False)
    if len(found) < every:
        earlier = every - len(found)
        out.print(f"{earlier:,} earlier run{'s' if earlier != 1 else ''}: --last 0 lists all", style="dim")
    return 0


def _status_shown(r: RunRecord) -> str:
    """A run's status as `status` shows it, with the cause it stopped on where it recorded one: "crashed (disk
    full)"."""
    return f"{r.shown_status} ({r.stopped_by.replace('-', ' ')})" if r.stopped_by else r.shown_status


@functools.lru_cache(maxsize=1)
def _recorded_parser() -> argparse.ArgumentParser:
    return _parser(with_sim=False)


def _started_with(argv: Sequence[str]) -> str:
    """How a run was started, from the command line it recorded: the command and its options as typed, without
    the manifest ("retry --unknown", "run --force --budget 10"); "" for a run started from Python. A command line
    this gridrun cannot read (another version's options) is given whole."""
    if not argv:
        return ""
    words = list(argv)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            manifest = getattr(_recorded_parser().parse_args(words), "manifest", None)
    except SystemExit:
        return shlex.join(words)
    if manifest in words[1:]:
        del words[words.index(manifest, 1)]
    return shlex.join(words)


# The states whose problem line says the attempt a job ended on (`_problems`)
_SETTLED_ATTEMPTS = ("failed", "rejected")


def _problems(snap: Snapshot) -> None:
    """The jobs that ended badly or hold an error, with why: one line for the jobs of one state and one error
    ("look=a and 9 more jobs: ..."), as the run's own last errors say it (a provider out of reach fails every
    job alike). Errors that differ only by the URL each job's download named are one error (`errors.alike`); each
    job's own stays in `status --json` and the export."""
    from .errors import alike, alike_text
    from .state import advised_now
    from .stats import problems

    groups: dict[tuple[str, str, int], list[tuple[str, str]]] = {}
    for j in problems(snap):
        error = advised_now(j.state, j.error or "", j.provider_id)  # an older gridrun's advice, as this one gives it
        # the attempt it ended on, past the first: a failure that repeats reads as one
        n = j.attempts if j.state in _SETTLED_ATTEMPTS else 0
        groups.setdefault((j.state, alike(error), n), []).append((j.key, error))
    for (state, _, n), jobs in groups.items():
        error = alike_text([e for _, e in jobs])
        on = f" (attempt {n:,})" if n > 1 else ""
        # done as they were, their re-render not sent (`problems`): left to re-render, no failure of a done job
        label = "[yellow]to re-render[/yellow]" if state == "done" else f"[red]{state}[/red]"
        out.print(f"  {label} {escape(_who([k for k, _ in jobs], value_shown))}{on}: {escape(visible(error))}")


def _alike(errors: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(key, error) pairs as one (jobs, error) line per error, in the order first met (see `_problems`)."""
    from .errors import alike, alike_text

    groups: dict[str, list[tuple[str, str]]] = {}
    for key, error in errors:
        groups.setdefault(alike(error), []).append((key, error))
    return [(_who([k for k, _ in jobs]), alike_text([e for _, e in jobs])) for jobs in groups.values()]


def _who(keys: Sequence[str], shown: Callable[[str], str] = visible) -> str:
    """The first of `keys`, and how many more ("look=a and 9 more jobs"); the key as `shown` shows it."""
    first = shown(keys[0])
    return first if len(keys) == 1 else f"{first} and {len(keys) - 1:,} more job{'s' if len(keys) > 2 else ''}"


# How long the watch, its first reading finding the latest run ended and no run starting, waits to read again: a
# run started at the same moment says it is starting once it has loaded its manifest (`api.starting`), which may
# come just after that reading. The watch of an ended run, no run starting, ends that much later.
START_GRACE = 0.25
# How long a watch with no run recorded and none starting waits for one to start (a `gridrun run` started in another
# shell with it says so once its interpreter is up; a first run, once it has planned and holds the lock).
NO_RUN_WAIT = 15.0


def _watch(args: argparse.Namespace) -> int:
    """`status --watch`: the run's live display (or its plain or JSON lines), from the state alone, until the
    latest run ends or its process is gone; then the problems, as `status` lists them. Exits with the run's
    own exit code (RUN_STATUSES), or GONE_EXIT when its process is gone; with no run recorded and none starting,
    exit 2 as `status`; 0 at once where the reader of its lines is gone (`| head -1`). With --json, a watch refused before it starts (no manifest given and no state folder here,
    no run recorded and none starting, an invalid manifest, a state it cannot read) or stopped
    by an error ends its lines with an `end` event as a refused run does, its status null: no run ended."""
    from .progress import Progress

    # Its lines are the command's output, on standard output as `status` writes (its JSON lines there too); what
    # it waits for is said on standard error.
    progress = Progress(err if args.json else out, json_lines=args.json,
                        every=2.0 if args.every is None else args.every, view=True)
    with _ends_json(progress, args.command, status_of=lambda exc: None, manifest=_manifest_given(args)):
        _status_manifest(args)  # read once, not at every reading
        manifest = args.manifest
        return _follow(args, manifest, progress)


def _follow(args: argparse.Namespace, manifest: Manifest | None, progress: Any) -> int:
    """The watch's readings of the state, drawn by `progress` every `progress.every` seconds, and what it says
    once the run has ended or its process is gone; the run's exit code (see `_watch`)."""
    from . import api
    from .stats import run_statistics

    every = progress.every
    records: dict[int, Any] = {}
    waiting = False
    first = True  # no run read yet
    quiet: float | None = None  # the seconds slept since no run was recorded and none starting
    doubted: int | None = None  # the run found gone once, read again before it is said to be
    with progress:
        while True:
            try:
                snap = api.status(manifest, state_dir=args.state, reuse=records)
            except RunStartingError as exc:  # no run recorded yet, but one is starting: wait for it
                quiet = None
                if not waiting:
                    err.print(f"waiting for a run to record itself ({exc})", markup=False)
                    waiting = True
                time.sleep(every)
                continue
            except NotRecordedError as exc:  # no run recorded, none starting: as `status` says, once none starts
                if quiet is None:
                    if not waiting:
                        _refuse_invalid(manifest)  # no run of it would start: its errors, without the wait
                    quiet = 0.0
                    if not waiting:
                        err.print(f"waiting up to {NO_RUN_WAIT:g} s for a run to start ({exc})", markup=False)
                if quiet < NO_RUN_WAIT:
                    pause = min(every, 2 * START_GRACE)
                    time.sleep(pause)
                    quiet += pause
                    continue
                raise
            quiet = None
            stats = run_statistics(snap)
            gone = snap.run.process_gone()
            if gone and doubted != snap.run.id:
                # Its end may have been recorded, and its lock let go, between this reading and that look: read
                # again (a run that ended is no run gone).
                doubted = snap.run.id
                continue
            doubted = snap.run.id if gone else None
            settled = snap.run.ended_at is not None or gone  # it will not move again
            first_reading, first = first, False
            if settled and api.run_starting(manifest, snap.run, state_dir=args.state):
                if not waiting:  # `gridrun run` or `retry` just started: its run is not recorded yet
                    was = "'s process is gone" if gone else " has ended"
                    err.print(f"run {snap.run.id}{was}; waiting for the run starting to record itself", markup=False)
                    waiting = True
                time.sleep(every)
                continue
            if settled and _latest_run_id(manifest, args.state, records, snap.run.id) != snap.run.id:
                continue  # a run recorded itself, and left no sign it was starting, since this reading: read it
            if settled and first_reading:
                time.sleep(START_GRACE)  # a run started with this watch may say so a moment after this reading
                continue
            if snap.run.ended_at is not None or gone:
                if gone:  # the plain line says why it stopped; the JSON's `stopping` stays as recorded, a token
                    stats = dataclasses.replace(
                        stats, stopping=stats.stopping if args.json else f"process {snap.run.pid} gone", eta=None)
                code = GONE_EXIT if gone else run_exit(snap.run.status, over_budget=snap.over_budget_note() is not None)
                progress.final(stats, status="gone" if gone else snap.run.status, exit_code=code)
                break
            progress.update(stats)
            if progress.unread:  # `status --watch | head -1`: the reader has what it wanted; the run is not ours
                return 0
            time.sleep(every)
    if not args.json:
        if gone:
            unnamed = manifest is None or _read_from_copy(manifest)
            # a run of the manifest as it is now refusing to resume it: that refusal is the step, no run proposed
            refusal = _status_next(args, snap, unnamed=unnamed)[0]
            gone_note = snap.run.gone_note(left=_jobs_left(snap.counts), unknown=snap.counts.get("unknown", 0),
                                           resumes=refusal is None)
            out.print(f"run {snap.run.id}: {_of_file(gone_note, snap) if unnamed else gone_note}", markup=False)
        else:
            out.print(f"run {snap.run.id} ended: {snap.run.status}", markup=False)
        _problems(snap)
        if gone and refusal is not None:
            out.print(f"  next: {escape(refusal.text)}")
        elif not gone:
            _say_next(snap, unnamed=manifest is None or _read_from_copy(manifest))
    return code


def _latest_run_id(manifest: Manifest | None, state_dir: Any, records: dict[int, Any], read: int) -> int:
    """The id of the manifest's latest run now: a run that recorded itself after the watch's reading of run
    `read` (and then removed its `starting` file) would otherwise be missed, and the watch end on `read`."""
    from . import api

    try:
        return api.status(manifest, state_dir=state_dir, reuse=records).run.id
    except (RunStartingError, NotRecordedError):
        return read


def cmd_cancel(args: argparse.Namespace) -> int:
    from . import api
    from .plan import endpoint_named, endpoint_now, relpath

    try:
        r = api.cancel(args.manifest, on_wait=lambda line: err.print(visible(line), markup=False),
                       void_unsent=args.void_unsent, same_account=args.same_account, state_dir=args.state)
    except NeverRanError as exc:  # as "nothing in flight to cancel": nothing at the provider to stop, exit 0
        out.print(visible(str(exc)), markup=False, highlight=False)
        return 0
    args.cancel_ended = True  # all it did is recorded: an interrupt from here on cuts only what it says of it
    say = functools.partial(out.print, markup=False)
    # the commands said next act on the state cancelled in, where it is not the one the manifest names now
    at_state = f" --state {typed(str(r.other_state))}" if r.other_state is not None else ""
    put_back = (f" (with the manifest's `state_dir:` put back as it was, the state in {visible(str(r.other_state))})"
            if r.other_state is not None else "")
    for warning in r.warnings:
        err.print(f"warning: {visible(warning)}", markup=False, highlight=False)
    # the manifest a run (or retry) that follows the jobs is of: a run's copy given (`.runs/run-N.yaml`), which they
    # refuse, the file that run was made from, the copy put back there first where that file differs from it now
    ran, run_m = "", typed(args.manifest)
    if r.manifest is not None and _a_runs_copy(args.manifest, r.manifest):
        run_m = typed(str(relpath(Path(r.manifest))))
        try:
            same = Path(r.manifest).read_bytes() == Path(args.manifest).read_bytes()
        except OSError:
            same = False
        ran = "" if same else f"cp {typed(args.manifest)} {run_m} && "
    def left_sending(keys: list[str]) -> str:
        """How the jobs `keys`, left `submitting`, are named: those the manifest no longer has said so."""
        kept = any(k in r.resend for k in keys)
        return "left sending by a run that stopped" + ("" if kept else ", which the manifest no longer has")

    def resent(keys: list[str], refused: str) -> str:
        """What a run of the manifest as it is does with the jobs `keys`, left `submitting`: sends those it has again
        (paid), or, where it has none of them, `refused`."""
        again = [k for k in keys if k in r.resend]
        if not again:
            return refused
        n = len(again)
        return (f"a run of the manifest looks {_them(n)} up too, but sends {_them(n)} again at once if not found: a "
                f"new render, paid")

    if r.found:
        n = len(r.found)
        ids = ", ".join(visible(v) for v in list(r.found.values())[:3]) + (", ..." if n > 3 else "")
        say(f"{_jobs(n)} {left_sending(list(r.found))} ({_some(list(r.found))}), found at the provider by "
            f"{'its' if n == 1 else 'their'} key in its request log ({ids}): recorded as sent, and handled as any job "
            "in flight")
    if r.cancelled:
        say(f"cancelled {_jobs(len(r.cancelled))} at the provider ({_cancel_charges(r)})")
        if r.kept:
            say(f"  {_rerenders_note(len(r.kept))}")
    elif not (r.failed or r.finished or r.still_running or r.dropped or r.unresolved or r.errors or r.gone
              or r.not_taken or r.refused or r.never_sent or r.not_in_log or r.found or r.look_later or r.log_unread
              or r.no_log or r.elsewhere or r.simulated or r.other_key):
        if r.after_recover is not None:
            # the jobs a run whose record was lost sent are planned here: the state cannot tell them from unsent
            run_id, keys = r.after_recover
            n = len(keys)
            say(f"nothing in flight that the state records; but run {run_id} was recorded by `gridrun recover`, and "
                f"the run whose record was lost may have sent its {_jobs(n)} not sent ({_some(keys)}), which would be "
                f"rendering and billed at the provider: `{ran}gridrun run {run_m}` sends {_them(n)} again under the "
                "same keys, the provider answering with the renders it has (a job never sent is a new render, paid); "
                f"Ctrl-C twice once {'it is' if n == 1 else 'they are'} sent, then `gridrun cancel "
                f"{typed(args.manifest)}{at_state}` stops {_them(n)}")
        else:
            say("nothing in flight to cancel")
    for at, how in r.elsewhere_how.items():
        keys = [k for k, there in r.elsewhere.items() if there == at]
        n = len(keys)
        err.print(f"{_jobs(n)} in flight ({_some(keys)}) {'was' if n == 1 else 'were'} sent to "
                  f"{visible(endpoint_named(at))}, not to the endpoint now, {visible(endpoint_now(*r.endpoint))}, which "
                  f"may not know {_them(n)}: not cancelled, nothing asked of it; {visible(how)} and `gridrun cancel "
                  f"{typed(args.manifest)}{at_state}` again to cancel {_them(n)} there (or `gridrun run` to collect "
                  f"{_them(n)})", markup=False)
    for sent_with in dict.fromkeys(r.other_key.values()):
        keys = [k for k, was in r.other_key.items() if was == sent_with]
        n = len(keys)
        err.print(f"{_jobs(n)} in flight ({_some(keys)}) {'was' if n == 1 else 'were'} sent with another API key "
                  f"(fingerprint {sent_with}) than the one {r.key_var or 'the key variable'} holds now, most often "
                  f"another account's, which does not know {_them(n)}: not cancelled, nothing asked; set "
                  f"{r.key_var or 'it'} back to the key of fingerprint {sent_with} and `gridrun cancel "
                  f"{typed(args.manifest)}{at_state}` again to cancel {_them(n)} (or `gridrun run` to collect {_them(n)}); "
                  f"if the key now is of the same account (a key rotated), `gridrun cancel {typed(args.manifest)}{at_state} "
                  f"--same-account` cancels {_them(n)} with it", markup=False)
    for at in dict.fromkeys(r.simulated.values()):
        keys = [k for k, there in r.simulated.items() if there == at]
        n = len(keys)
        say(f"{_jobs(n)} in flight ({_some(keys)}) {'was' if n == 1 else 'were'} sent to a simulator at {visible(at)}, "
            f"nothing paid: not cancelled, nothing asked of it; `gridrun run` sends {_them(n)} anew here, "
            f"{'its attempt' if n == 1 else 'their attempts'} there left behind")
    if r.never_sent:
        n = len(r.never_sent)
        say(f"{_jobs(n)} {left_sending(r.never_sent)} ({_some(r.never_sent)}): the provider's request log has no "
            f"create of {_them(n)}, so {'it was' if n == 1 else 'they were'} put back as never sent (--void-unsent): "
            "nothing paid, nothing reserved any more")
    if r.look_later:
        keys = list(r.look_later)
        n, (when, run_id) = len(keys), max(r.look_later.values())
        err.print(f"{_jobs(n)} {left_sending(keys)} ({_some(keys)}): not in the provider's request log (looked up, "
                  f"at no cost), but a send of {_them(n)} may still be on its way, so whether the provider made "
                  f"{_them(n)} is not known yet: not cancelled, still reserved. `gridrun cancel "
                  f"{typed(args.manifest)}{at_state}` looks {_them(n)} up in the provider's request log {when} for good (found, "
                  f"it cancels {_them(n)}; not found, `--void-unsent` puts {_them(n)} back as never sent, nothing "
                  f"paid); until then {resent(keys, f'a run of the manifest as it is refuses over {_them(n)}')}",
                  markup=False)
    if r.log_unread:
        keys = list(r.log_unread)
        n = len(keys)
        err.print(f"{_jobs(n)} {left_sending(keys)} ({_some(keys)}): the provider's request log could not "
                  f"be read ({visible(next(iter(r.log_unread.values())))}): `gridrun cancel {typed(args.manifest)}{at_state}` again "
                  f"looks {_them(n)} up (at no cost)", markup=False)
    if r.no_log:
        keys = list(r.no_log)
        n, run_id = len(keys), max(r.no_log.values())
        err.print(f"{_jobs(n)} {left_sending(keys)} ({_some(keys)}): the provider has no request log to look "
                  f"{_them(n)} up in, so whether {'it was' if n == 1 else 'they were'} made cannot be told at no "
                  f"cost: not cancelled, still reserved; a run of the manifest "
                  f"{'as it is' if any(k in r.resend for k in keys) else f'as run {run_id} had it'} finds out only "
                  f"by sending {_them(n)} again under {'its' if n == 1 else 'their'} key (a new render, paid, for any "
                  "the provider never made)", markup=False)
    if r.not_in_log:
        n = len(r.not_in_log)
        it = "it" if n == 1 else "they"
        err.print(f"{_jobs(n)} {left_sending(r.not_in_log)} ({_some(r.not_in_log)}), {'is' if n == 1 else 'are'} not "
                  f"in the provider's request log, so most likely never sent; {it} stay{'s' if n == 1 else ''} "
                  f"reserved, and {resent(r.not_in_log, f'a run refuses over {_them(n)}')}. `gridrun cancel "
                  f"{typed(args.manifest)}{at_state} --void-unsent` puts {_them(n)} back as not sent "
                  f"(nothing paid, nothing reserved); but if a gateway on the way still holds a create, the provider "
                  "may yet make and bill it with nothing here recording it", markup=False)
    for key, why in r.failed.items():
        say(f"{'  ' if r.cancelled else ''}{visible(key)}: had failed already ({visible(why)})")
    if r.failed_kept:
        say(f"{'  ' if r.cancelled else ''}{_rerenders_failed_note(len(r.failed_kept))}")
    for key, why in r.gone.items():
        say(f"{'  ' if r.cancelled else ''}{visible(key)}: unknown: {visible(why)}")
    if r.gone:
        n = len(r.gone)
        say(f"{_jobs(n)} whose video the provider no longer has, so nothing to cancel: recorded "
            f"`unknown`, as a run records {_them(n)} (still reserved: {'it' if n == 1 else 'they'} may have been "
            f"paid for); `{ran}gridrun retry --unknown {run_m}`{put_back} sends {_them(n)} again (may pay twice)")
    finished = [k for k in r.finished if k not in r.dropped]
    running = [k for k in r.still_running if k not in r.dropped]
    if finished:
        say(f"{_jobs(len(finished))} finished first: `{ran}gridrun run {run_m}`{put_back} downloads {_them(len(finished))}")
    if r.to_download:
        n = len(r.to_download)
        say(f"{_jobs(n)} rendered and paid, not yet downloaded ({_some(r.to_download)}): `{ran}gridrun run "
            f"{run_m}`{put_back} downloads {_them(n)} at no cost (the provider's links to "
            f"{'it' if n == 1 else 'them'} expire)")
    if running:
        say(f"{_jobs(len(running))} still rendering after the request: the next run follows {_them(len(running))}")
    if r.not_taken:
        # asking again cannot succeed: said once, with the provider's answer, not as a request to try again
        n, keys = len(r.not_taken), list(r.not_taken)
        following = [k for k in keys if k not in r.dropped]
        followed = (f"`{ran}gridrun run {run_m}`{put_back} follows {_them(len(following))} to the end and downloads what "
                    f"{'it renders' if len(following) == 1 else 'they render'}" if following else "")
        err.print(f"error: the provider does not take cancel requests ({visible(next(iter(r.not_taken.values())))}): "
                  f"{_jobs(n)} not cancelled ({_some(keys)}), still rendering and will be billed"
                  + (f"; {followed}" if followed else ""), markup=False)
    if r.refused:
        # the provider's verdict on those videos (a coded 400, 409, 422): asked again, it refuses again
        n, keys = len(r.refused), list(r.refused)
        following = [k for k in keys if k not in r.dropped]
        collected = (f": `{ran}gridrun run {run_m}`{put_back} collects {_them(len(following))} when "
                     f"{'it is' if len(following) == 1 else 'they are'} rendered" if following else "")
        err.print(f"error: the provider refused to cancel {_jobs(n)} ({_some(keys)}; "
                  f"{visible(next(iter(r.refused.values())))}): {'it renders' if n == 1 else 'they render'} on and "
                  f"will be billed{collected}; a cancel asked again is refused again", markup=False)
    if r.dropped:
        copy = visible(relpath(r.copy)) if r.copy else "its copy in .runs/"
        if r.copy and not r.copy_there:
            copy += (", missing, and not written again from the state: `gridrun status "
                     f"{typed(args.manifest)}{at_state} --manifest-copy {r.copy_run}` gives its text")
        them = _them(len(r.dropped))
        back = f": copy it back to {visible(relpath(r.manifest))} and run that" if r.manifest else " and run it"
        say(f"{_jobs(len(r.dropped))} finished or still rendering that the manifest no longer has "
            f"({_some(r.dropped)}): put the manifest back as the run "
            f"that sent {them} had it ({copy}){back} to download {'the job' if them == 'it' else them}; "
            + (f"until then a run refuses to start, or leaves {them} with --leave-in-flight" if r.blocking else
               f"a run of the manifest as it is leaves {them}"))
    if r.unresolved:
        err.print(f"{_jobs(len(r.unresolved))} sent by a run that stopped before the provider's answer was recorded "
                  f"({_some(r.unresolved)}) may be rendering and "
                  f"{'was' if len(r.unresolved) == 1 else 'were'} not cancelled: no key of "
                  f"{'its' if len(r.unresolved) == 1 else 'theirs'} is recorded to look {_them(len(r.unresolved))} "
                  f"up by, so `{ran}gridrun run {run_m}`{put_back} finds out only by sending "
                  f"{_them(len(r.unresolved))} again (a new render, paid, for any the provider never made)",
                  markup=False)
    for key, why in r.errors.items():
        err.print(f"error: {visible(key)}: {visible(why)}", markup=False)
    if r.errors:
        # nothing was recorded of them: still in flight in the state, so a cancel again asks the provider again
        n = len(r.errors)
        err.print(f"{_jobs(n)} not cancelled, a request to the provider having failed ({_some(list(r.errors))}): "
                  f"still in flight and reserved; `gridrun cancel {typed(args.manifest)}{at_state}` again tries {_them(n)} again, or "
                  f"`{ran}gridrun run {run_m}`{put_back} follows {_them(n)} to the end and downloads what "
                  f"{'it renders' if n == 1 else 'they render'} (paid)", markup=False)
    for run_id, path in r.reports.items():
        say(f"report of run {run_id} written again with what the cancel recorded: {visible(str(relpath(path)))}")
    for run_id, why in r.report_errors.items():
        fix = ("`gridrun run` on the manifest writes the report where the manifest now puts the videos, as said"
               if run_id in r.reports_moved else
               f"`gridrun report {typed(args.manifest)} --run {run_id}`{put_back} writes it")
        err.print(f"warning: the report of run {run_id} could not be written again ({visible(why)}): it still shows the "
                  f"jobs as before the cancel; {fix}", markup=False, highlight=False)
    # jobs recorded `unknown` (the provider no longer has them) may have been paid for, and are left for `gridrun
    # retry --unknown`: not a cancel that settled everything
    return 1 if r.errors or r.unresolved or r.not_taken or r.refused or r.not_in_log or r.look_later or r.log_unread or r.no_log \
        or r.elsewhere or r.other_key or r.gone else 0


def _cancel_charges(r: Any) -> str:
    """What the jobs `cancel` cancelled (`r`, a CancelResult) were billed, as the provider reported it: those
    charged (their renders cut short) apart from those it cancelled free (while queued); where it reported nothing
    for some, that what they rendered may still be billed, and those cancelled while queued too where the provider
    does not say a queued cancel is free (`CancelResult.queued_free`)."""
    charges = [r.charged.get(k) for k in r.cancelled]
    if any(c is None or c[1] is None for c in charges):
        if r.queued_free:
            return "what it rendered may still be billed"
        return ("what it rendered may still be billed, and a job cancelled while still queued too: the provider "
                + ("bills a queued cancel" if r.queued_free is False else "promises no refund"))
    billed = [c[0] for c in charges if c and c[0]]
    free = len(charges) - len(billed)
    if not billed:
        return "nothing billed, as the provider reported"
    one = len(billed) == 1
    return (f"billed {usd_text(sum(billed))} for {_jobs(len(billed))} whose render{'' if one else 's'} {'was' if one else 'were'} cut "
            f"short, as the provider reported{f'; {free:,} free' if free else ''}")


def _proxy_named(url: str) -> str | None:
    """How messages name the proxy the environment gives for requests to `url` (None: they go directly)."""
    route = _proxy_route(url)
    return visible(route.label) if route else None


def _proxy_route(url: str) -> Any:
    """The proxy (`runner.providers.proxy.Route`) the environment gives for requests to `url`; None: they go
    directly."""
    if not url.startswith(("http://", "https://")):
        return None  # the simulator built in
    import httpx

    from .providers.proxy import Proxies

    try:
        return Proxies().named_for(url)
    except httpx.InvalidURL:  # the error above said what the URL is
        return None


def _interrupted(args: argparse.Namespace, argv: list[str], exc: BaseException | None = None) -> int:
    """Ctrl-C (or SIGTERM) ended the command (`exc`): said, exit 130. A `cancel` stopped so may have had cancel
    requests at the provider already, taken there but not recorded: the state still has those jobs in flight
    (`_cancel_interrupted`).

    Said as the command waits for its reader (`entry.reading`): the interrupt may have cut a line written to a
    reader that never reads (a hung log shipper), where the goodbye would wait for ever; a second signal then ends
    the command at once, what is left unsaid given up. The `end` event of JSON lines first, for the script reading
    them, then the line for the person."""
    with reading(130):
        end_interrupted(argv, manifest=_json_manifest(args))
        if args.command == "cancel":
            err.print(_cancel_interrupted(args, exc), markup=False)
        else:
            err.print("interrupted")
    return 130


def _cancel_interrupted(args: argparse.Namespace, exc: BaseException | None) -> str:
    """What an interrupted `cancel` did at the provider, from the cancel requests it recorded as asked (each is,
    before it is sent) and how many of them it recorded no outcome of (`CancelInterrupted`): none sent, nothing
    changed there; else those may have stopped jobs the state still has in flight."""
    again = f"`gridrun cancel {typed(args.manifest)}` again"
    if getattr(args, "cancel_ended", False):  # interrupted as it said what it did, all of it recorded
        return (f"interrupted: what cancel did is recorded; `gridrun status {typed(args.manifest)}` says what is "
                "still in flight")
    if isinstance(exc, BaseExceptionGroup):  # out of a task: the group's CancelInterrupted, if any
        exc = exc.split(CancelInterrupted)[0]
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
    sent, unanswered = (exc.sent, exc.unanswered) if isinstance(exc, CancelInterrupted) else (0, 0)
    if not sent:
        return f"interrupted before any cancel request was sent; nothing changed at the provider: {again} cancels " \
               "the jobs in flight"
    requests = f"{sent:,} cancel request{'s' if sent != 1 else ''}"
    if not unanswered:
        return (f"interrupted: the {requests} sent {'are' if sent != 1 else 'is'} recorded with what "
                f"{'they' if sent != 1 else 'it'} did; {again} cancels the rest")
    one = unanswered == 1
    some = f"{unanswered:,} of the {requests} sent" if unanswered != sent else f"the {requests} sent"
    return (f"interrupted: {some} ({'' if sent == 1 else 'each '}recorded as asked before it was sent) "
            f"{'has' if one else 'have'} no outcome recorded here: {'it' if one else 'they'} may have stopped "
            f"{'its job' if one else 'their jobs'} at the provider; {again} records what {'it' if one else 'they'} "
            "did and cancels the rest")


def _some(keys: Sequence[str]) -> str:
    """The first three of `keys` (… for more), each's characters that act on a terminal escaped."""
    return ", ".join(map(visible, keys[:3])) + (" …" if len(keys) > 3 else "")


def _jobs(n: int) -> str:
    return f"{n:,} job" if n == 1 else f"{n:,} jobs"


def _altered_to_pay(paid: Sequence[Any], manifest: str) -> str:
    """What becomes of the jobs recover did not adopt for their takes edited (`paid`: `recover.Found`s of the jobs
    altered that a run sends), in words: the next run renders them again, for their price, unless the takes are
    put back as their downloads wrote them; and where an older take of a job is found elsewhere, moving the edited
    file out of the output folder has the next recover adopt that one."""
    from .jobs import usd_text

    one = len(paid) == 1
    money = sum(f.cost_micros for f in paid)
    said = (f"the next `gridrun run` renders {'this job' if one else 'these jobs'} again, paying {usd_text(money)} "
            f"for {_them(len(paid))} (the edited file{'' if one else 's'} kept under .runs/superseded/): to pay "
            f"nothing, put back {'the video and its sidecar' if one else 'each video and sidecar'} as the download "
            f"wrote them (from a backup or a copy) and run `gridrun recover {typed(manifest)}` again")
    older = [f.key for f in paid if f.older]
    if older:
        said += (f"; or move the edited file{'' if len(older) == 1 else 's'} of {_some(older)} out of the output "
                 f"folder and recover again, which adopts the older take found elsewhere in the folder")
    return said


def _them(n: int) -> str:
    """The pronoun for `n` jobs named just before: "it" for one."""
    return "it" if n == 1 else "them"


# --------------------------------------------------------------------------------------------------
# report / export / sim


def cmd_recover(args: argparse.Namespace) -> int:
    """`gridrun recover`: record as done, paying nothing, each job whose finished video the output folder holds
    (a state lost, emptied or behind), and say what was found and what a run now costs; --dry-run writes
    nothing."""
    from . import api
    from .jobs import usd_text
    from .recover import (
        ALTERED,
        ANOTHER,
        NOT_FOUND,
        RECORDED,
        RECOVERED,
        UNCHECKED,
        recover_json,
    )
    from .terminal import writes_any

    try:
        r = api.recover(args.manifest, dry_run=args.dry_run, max_jobs=args.max_jobs, argv=args.argv,
                        key_part=args.key_part)
    except Exception as exc:  # a bug's too: a machine caller reads one object, whatever ended it
        if args.json:  # one JSON object still: the errors, as `plan --json`'s refusal
            _say_json({"format": "gridrun.recover/1", "manifest": _json_manifest(args), "exit_code": _exit_code(exc),
                       "errors": _error_lines(exc, "recover", args.manifest)},
                      ensure_ascii=not writes_any(sys.stdout))
        raise
    try:
        live = api.live_run(api.load(args.manifest))
    except (GridrunError, OSError, sqlite3.Error):
        live = None
    if args.json:
        # `live_run`: the run of this manifest going on this moment, which sends what it planned itself, as `plan
        # --json` gives it; null where none is
        _say_json({"format": "gridrun.recover/1", **recover_json(r),
                   "live_run": None if live is None else live.as_json(args.manifest)},
                  ensure_ascii=not writes_any(sys.stdout))
        return 0
    say = functools.partial(out.print, markup=False, highlight=False)
    if live is not None:  # first: what is sent next is that run's
        say(f"note: {visible(live.note(args.manifest))}")
    counts = r.counts()
    would = "would record" if r.dry_run else "recorded"
    if r.refused is not None:
        say("the state was refused as it was (lost, emptied or behind); recover goes on from what the output "
            "folder holds")
    if counts[RECOVERED]:
        # the later takes of jobs the state held are no money a run would pay again: it puts the older takes back
        held = r.newer_takes
        again = ("" if held == counts[RECOVERED] else f" ({usd_text(r.recovered_micros)} a run would otherwise pay "
                 + ("again)" if not held else f"again for the {counts[RECOVERED] - held:,} the state did not hold)"))
        one = counts[RECOVERED] == 1
        say(f"{visible(r.outputs_dir)}: {_jobs(counts[RECOVERED])} found whole with "
            f"{'its sidecar' if one else 'their sidecars'}: {would} done, nothing sent{again}")
    else:  # none to record done: said as none, not as a count of 0 recorded
        say(f"{visible(r.outputs_dir)}: no job found whole with its sidecar, none to record done")
    newer = [f for f in r.jobs if f.newer]
    if newer:
        runs = sorted({f.sent_by for f in newer if f.sent_by is not None})
        made = f" made by run{'s' if len(runs) != 1 else ''} {', '.join(map(str, runs))}" if runs else ""
        cost = sum(f.recorded_cost_micros or 0 for f in newer)
        one = len(newer) == 1
        say(f"  {len(newer):,} of them with a later take than the state held{made}, whose record it lost "
            f"({usd_text(cost)} as {'its sidecar records' if one else 'their sidecars record'}): "
            f"{_some([f.key for f in newer])}; {would} done with {'that take' if one else 'those takes'}, kept where "
            f"a run would otherwise move {'it' if one else 'them'} aside for the older "
            f"{'take' if one else 'takes'} it holds (paid for nothing either way)")
    for outcome, what in ((RECORDED, ("held by the state already, left as it is",
                                      "held by the state already, left as they are")),
                          (NOT_FOUND, ("not found (never finished, or the video gone)",
                                       "not found (never finished, or the videos gone)")),
                          (ALTERED, (("whose video is not the one its sidecar records (edited or cut short), or "
                                      "whose sidecar holds a figure out of range: not adopted"),
                                     ("whose videos are not the ones their sidecars record (edited or cut short), or "
                                      "whose sidecars hold a figure out of range: not adopted"))),
                          (ANOTHER, ("whose sidecar is another job's, provider's or state's: not adopted",
                                     "whose sidecars are other jobs', providers' or states': not adopted"))):
        if counts[outcome]:
            keys = [f.key for f in r.jobs if f.outcome == outcome]
            say(f"  {_jobs(len(keys))} {what[len(keys) != 1]}: {_some(keys)}")
    paid = [f for f in r.jobs if f.outcome == ALTERED and f.key in set(r.to_pay)]
    if paid:
        say("  " + _altered_to_pay(paid, r.manifest))
    if counts[UNCHECKED]:
        said = [f"{f.key} ({f.why})" for f in r.jobs if f.outcome == UNCHECKED]
        say(f"  {_jobs(len(said))} not checked: {_some(said)}")
    if r.key_part_unknown is not None:
        say(f"which takes here are this state's is not known: {r.key_part_unknown}")
    lost = r.in_flight_unknown
    if lost is not None:
        one = lost["jobs"] == 1
        them = "it" if one else "them"
        say(f"run {lost['run']}, which the output folder's lock names, may have left in flight at the provider "
            + ("the job not found here; its key is unknown" if one else
               f"any of the {_jobs(lost['jobs'])} not found here; their keys are unknown")
            + " (the lock, written by an older gridrun, holds no key part, and no sidecar here carries it), so "
            f"`gridrun run` sends {them} under {'a new key' if one else 'new keys'} and pays for {them} again "
            f"({usd_text(round(lost['usd'] * 1e6))}) where {'it was' if one else 'they were'}: restore state.db "
            f"from a backup to collect {them} instead, or let the renders of the lost run end first")
    elif r.lost_run is not None and r.to_pay:
        one = len(r.to_pay) == 1
        say(f"run {r.lost_run}, which the output folder's lock names, may have left "
            f"{'this job' if one else 'some of these jobs'} in flight at the provider: "
            f"{'it is' if one else 'they are'} sent again under its key part, which this state "
            f"{'would take' if r.dry_run else 'takes'} as its own, so the provider gives back the "
            f"{'render' if one else 'renders'} it has of {'it' if one else 'them'}, not paid for again; until a run "
            f"does, {'it' if one else 'they'} may be rendering and billed there, and `gridrun cancel` sees nothing "
            f"in flight (the state records none): to stop {'it' if one else 'them'} instead, `gridrun run` (a job "
            f"the lost run never sent is sent as a new render, paid), Ctrl-C twice once {'it is' if one else 'they are'} "
            "sent, then `gridrun cancel`")
    if r.run_id is not None:
        say(f"recorded as run {r.run_id} (status recovered)")
    elif r.unchecked is not None:
        say(f"{'would record' if r.dry_run else 'recorded'} nothing"
            + (": the state stays refused as it was, since " if r.refused is not None else ", since ")
            + f"{r.unchecked}")
        return 0
    elif r.refused is not None and r.takes_left and not any(f.outcome == RECOVERED for f in r.jobs):
        say(f"{'would record' if r.dry_run else 'recorded'} nothing: the state stays refused as it was, since the "
            f"output folder holds {r.takes_left:,} take{'s' if r.takes_left != 1 else ''} of this manifest's jobs "
            f"not adopted (above); put {'it' if r.takes_left == 1 else 'them'} right and recover again, or start "
            "over knowingly as `gridrun plan` says (those jobs sent and paid for again)")
    elif not r.dry_run:
        say("nothing to record: the state was left as it is")
    then = "would then cost" if r.dry_run else "now costs"
    say(f"`gridrun run` {then} {usd_text(r.to_pay_micros)}: {_jobs(len(r.to_pay))} to send"
        + (f" ({_some(list(r.to_pay))})" if r.to_pay else "")
        + ("" if live is None or not r.to_pay else
           f"; but {'a run starting' if live.run_id is None else f'run {live.run_id}'}, going on, sends those it "
           "planned itself: `gridrun plan` once it ends says what is left"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import api
    from .export import told
    from .outputs import kept_foreign
    from .plan import relpath

    with kept_foreign() as kept, told() as notes:
        path = api.report(args.manifest, compare=tuple(args.compare) if args.compare else None, run_id=args.run)
    _say_kept(kept)
    _say_told(notes)
    out.print(f"report: {visible(relpath(path))}", markup=False, highlight=False)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import api
    from .export import told
    from .outputs import kept_foreign
    from .plan import relpath

    with kept_foreign() as kept, told() as notes:
        paths = api.export(args.manifest, formats=tuple(args.format), run_id=args.run)
    _say_kept(kept)
    _say_told(notes)
    for p in paths:
        out.print(visible(relpath(p)), markup=False, highlight=False)
    return 0


def _say_told(notes: list[tuple[str, str]]) -> None:
    """What `report` or `export` said of what they wrote (`export.told`), each a line on standard error."""
    for kind, note in notes:
        err.print(f"{kind}: {visible(note)}", markup=False, highlight=False)


def _say_kept(kept: list[tuple[Path, Path]]) -> None:
    """A warning for each file gridrun did not write that it kept aside before writing its own in its place."""
    from .plan import relpath

    for was, at in kept:
        err.print(f"warning: {visible(relpath(was))} was not written by gridrun: kept at "
                  f"{visible(relpath(at))}", markup=False, highlight=False)


def cmd_init(args: argparse.Namespace) -> int:
    """A first manifest for a project, where an installed gridrun has no examples beside it: the demo (a style ×
    seed grid on the built-in simulator, no key, no cost), its schema line naming the schema this gridrun
    checks manifests against, by absolute `file:` URI, so that an editor completes and checks the file wherever
    it is. An existing file is never overwritten (it may be a manifest with runs); `-` writes to standard
    output."""
    from .outputs import fsync
    from .plan import relpath
    from .resources import resource_dir
    from .terminal import typed

    text = starter_manifest(None if args.file == "-" else Path(args.file).stem)
    if args.file == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    target = Path(args.file)
    if target.name.startswith("-"):
        raise UsageError(f"{visible(args.file)}: a manifest whose name begins with '-' reads as an option to "
                         f"the commands that take it; name it otherwise")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise UsageError(f"{visible(args.file)} already exists, and is left as it is: name another file "
                         f"(gridrun init NEW.yaml)") from None
    except FileNotFoundError:
        folder = target.parent
        raise UsageError(f"{visible(args.file)}: there is no folder {visible(str(folder))} to write it in "
                         f"(mkdir -p {typed(folder)} first)") from None
    try:
        with open(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            fsync(f.fileno())
    except BaseException as exc:
        target.unlink(missing_ok=True)  # no half-written manifest left for the next command to refuse
        if isinstance(exc, OSError) and exc.filename is None:  # a write (a full disk): said of the file
            exc.filename = str(target)
        raise
    shown = typed(relpath(target.resolve()))
    out.print(f"wrote {visible(relpath(target.resolve()))}: 12 jobs, a 4 × 3 grid of styles and seeds, "
              f"on the built-in simulator (no key, no network, no cost)", markup=False, highlight=False)
    out.print(f"next: gridrun plan {shown}, then gridrun run {shown}", markup=False, highlight=False)
    out.print(f"its schema, for an editor: {resource_dir('schemas') / 'manifest.schema.json'}", markup=False,
              highlight=False)
    return 0


def starter_manifest(stem: str | None = None) -> str:
    """The text `gridrun init` writes: `manifests/demo.yaml`, its first line (the schema, relative to the
    checkout's `manifests/`) naming the schema by absolute URI instead, and its `name:` the stem of the file it is
    written to (`grid.yaml`: grid) where that stem is a name a manifest takes, in quotes where YAML would read it
    as no string (`"2025"`): two manifests made by `init` in one folder then share no history and no output folder.
    `demo` otherwise (no file, or a stem no name can be)."""
    from .resources import resource_dir

    demo = (resource_dir("manifests") / "demo.yaml").read_text(encoding="utf-8")
    first, rest = demo.split("\n", 1)
    assert first.startswith("# yaml-language-server: $schema="), first
    schema = (resource_dir("schemas") / "manifest.schema.json").resolve()
    pattern = json.loads(schema.read_text(encoding="utf-8"))["$defs"]["name"]["pattern"]
    if stem is not None and stem != "demo" and re.fullmatch(pattern, stem, flags=re.ASCII):
        from .yamlsource import load_plain

        # a stem YAML reads as a number, true or null (`2025`, `1e3`, `0x1F`, `null`) goes in quotes, as a string
        written = stem if isinstance(load_plain(stem), str) else f'"{stem}"'
        rest = re.sub(r"^name: demo( *)(#.*)outputs/demo/$",
                      lambda m: f"name: {written}{' ' * max(1, len(m[1]) + 4 - len(written))}{m[2]}outputs/{stem}/",
                      rest, count=1, flags=re.MULTILINE)
    return f"# yaml-language-server: $schema={schema.as_uri()}\n{rest}"


def cmd_sim_serve(args: argparse.Namespace) -> int:
    from .sim.serve import serve

    return serve(args)  # it says a listen failure itself (exit 2); a line it cannot write stops nothing


# --------------------------------------------------------------------------------------------------


# The run knobs that are times, in seconds: a flag's value written with a unit (`--timeout 10m`) is told so
_KNOBS_IN_SECONDS = frozenset({"poll_interval", "timeout", "request_timeout", "every"})


def _knob(name: str) -> Any:
    """An argparse type for the run knob `name`: its number, or argparse's usage error saying what is wrong."""
    from .options import DECIMAL_KNOBS, OPTION_LIMITS, decimal_of, flag_problem
    from .textforms import in_seconds

    integer = OPTION_LIMITS[name][0]

    def parse(text: str) -> int | float | Decimal:
        if name in DECIMAL_KNOBS:
            # read as the manifest reads the knob (ASCII decimal digits, no `4_20`), its digits counted as written
            exact = decimal_of(text)
            if exact is None:
                raise argparse.ArgumentTypeError(f"a number in decimal digits (4.20, 0.5, 1e3) is needed, got {text!r}")
            problem = flag_problem(name, exact)
            if problem is not None:
                raise argparse.ArgumentTypeError(problem)
            return exact
        try:
            value: int | float = int(text) if integer else float(text)
        except ValueError:
            if name in _KNOBS_IN_SECONDS:
                raise argparse.ArgumentTypeError(f"a number of seconds is needed, got {text!r}{in_seconds(text)}") from None
            raise argparse.ArgumentTypeError(f"{'an integer' if integer else 'a number'} is needed, got {text!r}") from None
        problem = flag_problem(name, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


def _run_count(text: str) -> int:
    """An argparse type for `status --last`: a whole number of runs, 0 for all of them."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of runs is needed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a number of runs is 0 (all of them) or more, got {value}")
    return value


class _UsageExit(SystemExit):
    """argparse's exit on a command line it cannot read (exit 2), with its `message` as standard error gives it
    after "error: "."""

    def __init__(self, code: int | str | None, message: str) -> None:
        super().__init__(code)
        self.message = message
        # the manifest the command line names, where its words were read before it was refused (`_parse`)
        self.manifest: str | None = None


class _HelpFormat(argparse.HelpFormatter):
    """A command's description filled to the terminal's width paragraph by paragraph (argparse's default runs
    them together), and a paragraph that has an indented line (its examples, its exit codes) kept line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        parts = []
        for part in text.split("\n\n"):
            lines = part.splitlines()
            kept = any(line[:1].isspace() for line in lines)
            parts.append("\n".join(indent + line for line in lines) if kept else super()._fill_text(part, width, indent))
        return "\n\n".join(parts)


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` (its subcommands' too) that says a usage error and exits as argparse does, keeping the
    message (`_UsageExit`) for `main` to end the JSON lines of a command that writes them. An option is taken
    only as written whole: argparse's default takes any prefix that names one option (`--fo` for `--force`,
    which pays again), and a word it refuses is told the name it most likely meant."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _HelpFormat)
        super().__init__(*args, **kwargs)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """argparse's check of a choice (a command's name, `--format`), its refusal saying the choice closest
        to `value` too: "invalid choice: 'rnu'; did you mean 'run'? (choose from ...)"."""
        choices = action.choices
        if choices is not None and isinstance(value, str) and value not in choices:
            close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
            if close:
                listed = ", ".join(repr(c) for c in choices)
                raise argparse.ArgumentError(action, f"invalid choice: {value!r}; did you mean {close[0]!r}? "
                                                     f"(choose from {listed})")
        super()._check_value(action, value)

    def _print_message(self, message: str, file: Any = None) -> None:
        """argparse's (help, version, usage), but a write that fails other than by its reader going is said at the
        command's end (`_said_unwritten`), as any command's output is, where argparse drops it."""
        from .outputs import lost, mute

        if not message:
            return
        file = file or sys.stderr
        try:
            file.write(message)
        except BrokenPipeError:  # `gridrun --help | head -1`: the reader has what it wanted
            with contextlib.suppress(OSError, ValueError):
                mute(file)
        except OSError as exc:
            lost(file, exc)
        except AttributeError:  # no stream at all (None)
            pass

    def error(self, message: str) -> NoReturn:
        try:
            super().error(message)
        except SystemExit as exc:
            raise _UsageExit(exc.code, message) from None


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """`parser.parse_args(argv)`, but words it does not know (`run M --bogus`) are refused by the command they
    follow, with that command's usage (`gridrun run [-h] ...`), where argparse gives the top level's; a command's
    option written before it (`gridrun --json plan M`) is told to go after it."""
    _help_command(parser, argv)
    _resume_command(parser, argv)
    _dashed_manifest(parser, argv)  # first: its command moves the options written before the command's name too
    _values_before(parser, argv)
    with _manifest_optional(parser) as optional:
        args, extras = parser.parse_known_args(argv)
        refuser, commands = _reached(parser, args)
        if valued := _unknown_valued(args, argv, extras, refuser, parser):
            # `run -j 4 M`, `run -budjet 3 M`, `plan --concurrency 4 M`: `4` and `3` are the unknown option's, not the
            # manifest, which argparse would take them for (and call M unknown)
            read, rest = parser.parse_known_args([w for i, w in enumerate(argv) if i not in valued])
            # but a manifest (`run -budjet t.yaml`, `plan --budjet t.json` of a file there) is not taken for the value
            # where no other is given; a number is (`run -budjet 3`, a file named `3` or not)
            named = getattr(args, "manifest", None)
            kept = (named is not None and getattr(read, "manifest", None) is None
                    and (named.lower().endswith((".yaml", ".yml")) or (os.path.lexists(named) and not _number(named))))
            if _reached(parser, read)[0] is refuser and not kept:
                args, extras = read, _in_order(argv, valued, rest)
    try:
        if refuser in optional and args.manifest is None:
            # argparse's refusal, with what gridrun has for the words it did not know where it has something
            meant = (_foreign(args, extras, refuser) or _other_command_note(parser, refuser, extras)
                     or _meant(refuser, extras)) if extras else ""
            unknown = f"; unrecognized arguments: {' '.join(extras)}{meant}" if meant else ""
            refuser.error(f"the following arguments are required: manifest{unknown}")
        if extras:
            # Options before the command's name (`gridrun --json plan M`) are left over by the top level, which has
            # none of a command's: where they are the command's own, their place is what is wrong.
            first = next((i for i, w in enumerate(argv) if not w.startswith("-")), len(argv))
            early = list(argv[:first])
            known = {o for a in refuser._actions for o in a.option_strings}
            if refuser is not parser and early and all(w.split("=", 1)[0] in known for w in early):
                go = "goes" if len(early) == 1 else "go"
                refuser.error(f"{' '.join(early)} {go} after the command: "
                              f"{' '.join(map(typed, ['gridrun', *_options_after(argv[first:], early)]))}")
            meant = (_foreign(args, extras, refuser) or _other_command_note(parser, refuser, extras)
                     or _meant(refuser, extras))
            refuser.error(f"unrecognized arguments: {' '.join(extras)}{meant}")
        if commands is not None:  # `gridrun`, `gridrun sim`: a usage error, as argparse says one
            refuser.error(f"name a command: {', '.join(commands)}")
        if args.command == "status" and (refused := _status_refused(args)) is not None:
            refuser.error(refused)
    except _UsageExit as exc:  # the manifest the words name, read as the command reads them
        exc.manifest = getattr(args, "manifest", None)
        raise
    return args


@contextlib.contextmanager
def _manifest_optional(parser: argparse.ArgumentParser) -> Iterator[set[argparse.ArgumentParser]]:
    """The commands that require a manifest reading their words with none required, `_parse` refusing its absence
    itself: argparse refuses it before it looks at the words it does not know, which leaves `run -j 4` without the
    option gridrun has for `-j`, and `plan --budjet 3` without the option it most likely means. Yields those
    commands."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    commands = list(sub.choices.values()) if sub is not None else []
    actions = {a: c for c in commands for a in c._actions if a.dest == "manifest" and a.required}
    for action in actions:
        action.required = False
    try:
        yield set(actions.values())
    finally:
        for action in actions:
            action.required = True


def _help_command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Refuses `gridrun help [COMMAND ...]`, which many tools take, with the `--help` that says it: `gridrun run
    --help` for `gridrun help run` (`gridrun sim serve --help` for `help sim serve`), `gridrun --help` else."""
    if argv[:1] != ["help"]:
        return
    command, names = parser, []
    for word in argv[1:]:
        sub = next((a for a in command._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            break
        command, names = sub.choices[word], [*names, word]
    if names:
        parser.error(f"'help' is no command: `{shlex.join(['gridrun', *names, '--help'])}` describes "
                     f"{' '.join(names)}")
    parser.error("'help' is no command: `gridrun --help` lists the commands, and `gridrun COMMAND --help` "
                 "describes one (`gridrun run --help`)")


def _dashed_manifest(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Refuses a word after a command's name that begins with '-', is none of its options and names a file (or
    ends in .yaml or .yml): a manifest named `-m.yaml`, which argparse reads as an unknown option and then says
    no manifest was given. It goes as `./-m.yaml`, or after `--`: the command the error gives has the command's
    name first, its options after it (those written before it moved there), then one `--` and the manifest."""
    command = parser
    names: list[int] = []  # where the command's names are in `argv`
    for i, word in enumerate(argv):
        if word == "--":
            return
        sub = next((a for a in command._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is not None:
            if word in sub.choices:
                command = sub.choices[word]
                names.append(i)
            continue
        if word == "-" or not word.startswith("-") or word.split("=", 1)[0] in command._option_string_actions:
            continue
        if word.lower().endswith((".yaml", ".yml")) or os.path.lexists(word):
            end = argv.index("--") if "--" in argv else len(argv)
            options = [w for j, w in enumerate(argv[:end]) if j != i and j not in names]
            words = [*(argv[j] for j in names), *options, "--", word, *argv[end + 1:]]
            command.error(f"{typed(word)} is read as an option: a manifest whose name starts with '-' goes as "
                          f"{typed('./' + word)} (or after --: {' '.join(['gridrun', *map(typed, words)])})")


def _status_refused(args: argparse.Namespace) -> str | None:
    """Why `status`'s options cannot go together (`--last` without `--runs`, `--runs` with `--watch`), else None: a usage error, said
    before the manifest or the state is read (a manifest that does not load is warned of first otherwise), and
    at the end of `status --watch --json`'s lines as any command line it cannot read."""
    if args.manifest_copy is not None and (args.watch or args.runs or args.json or args.every is not None
                                           or args.last is not None):
        return "--manifest-copy goes alone"
    if args.runs and args.watch:
        return "--runs lists the runs recorded; --watch follows the latest one: one or the other"
    if args.last is not None and not args.runs:
        return "--last goes with --runs"
    if args.every is not None and not args.watch:
        return "--every goes with --watch"
    return None


def _values_before(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Refuses a command's options written before it where one takes its value after a space (`gridrun --state x
    status M`), telling them to go after it, as `_parse` tells the others: the top level, which has none of them,
    would take the value for the command's name ("invalid choice: 'x'")."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if sub is None or not argv or not argv[0].startswith("-"):
        return
    at = next((i for i, w in enumerate(argv) if w in sub.choices), None)
    if at is None or "--" in argv[:at]:
        return
    command, early = sub.choices[argv[at]], list(argv[:at])
    i, options, spaced = 0, 0, False
    while i < len(early):
        action = command._option_string_actions.get(early[i].split("=", 1)[0])
        if action is None or not early[i].startswith("-"):
            return  # not the command's option, or a word that is no option's value: said as argparse says it
        takes = 0 if "=" in early[i] else 1 if action.nargs is None else action.nargs
        if not isinstance(takes, int) or i + 1 + takes > len(early):  # its value the command's name
            return
        spaced = spaced or takes > 0
        i, options = i + 1 + takes, options + 1
    if spaced:
        command.error(f"{' '.join(early)} {'goes' if options == 1 else 'go'} after the command: "
                      f"{' '.join(map(typed, ['gridrun', *_options_after(argv[at:], early)]))}")


def _options_after(words: Sequence[str], options: Sequence[str]) -> list[str]:
    """`words` (a command's name and what follows it) with `options` put among its options: before a `--`, past
    which they would be read as a manifest's name."""
    at = words.index("--") if "--" in words else len(words)
    return [*words[:at], *options, *words[at:]]


def _reached(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[argparse.ArgumentParser, Any]:
    """The (sub)command the words `args` was read from reached (`gridrun sim` reaches `sim`), and the names of
    the commands it takes where none was named after it, else None."""
    while True:
        found = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = None if found is None else getattr(args, found.dest, None)
        if found is None:
            return parser, None
        if name not in found.choices:
            return parser, list(found.choices)
        parser = found.choices[name]


# Other batch tools' short options, alone or run together (`-n`, `-j4`, `-jn`, `-np`, `-j=4`), none of which a
# command that sends jobs has: the letters, and the number written on to the last of them.
_SHORT_CLUSTER = re.compile(r"-(?P<letters>[jn][A-Za-z]*?)(?:=?(?P<number>\d+))?")


def _unknown_valued(args: argparse.Namespace, argv: Sequence[str], extras: Sequence[str],
                    refuser: argparse.ArgumentParser, parser: argparse.ArgumentParser) -> set[int]:
    """Where `argv` has an option the command does not know that stands for one taking a value, followed by a
    word that is no option, the indexes of both: another batch tool's `-j` or `--jobs` (or a short cluster ending
    in j, `-nj`) before a number (`-j 4`), an option another gridrun command takes with a value (`plan
    --concurrency 4`, `_other_commands`), or an option spelled close to one taking a value (`-budjet 3`, `--budjet
    3`, as `_meant` finds it). argparse reads that word as the manifest."""
    found: set[int] = set()
    for i, word in enumerate(argv[:-1]):
        if word == "--":
            break
        after = argv[i + 1]
        if word not in extras or i in found or after == "-" or after.startswith("-"):
            continue
        if "=" not in word and _other_commands(parser, refuser, word, valued=True):
            found |= {i, i + 1}
            continue
        cluster = _SHORT_CLUSTER.fullmatch(word)
        ends_in_j = cluster is not None and cluster["number"] is None and cluster["letters"].endswith("j")
        if (word == "--jobs" or ends_in_j) and not _close_option(refuser, word):
            if argv[i + 1].isdigit():
                found |= {i, i + 1}
            continue
        close = _close_option(refuser, word) if "=" not in word else None
        if close is not None and refuser._option_string_actions[close].nargs != 0:
            found |= {i, i + 1}
    return found


def _number(word: str) -> bool:
    """Whether `word` reads as a number (`3`, `2.5`): an option's value more likely than a manifest's name."""
    try:
        float(word)
    except ValueError:
        return False
    return True


def _other_commands(parser: argparse.ArgumentParser, refuser: argparse.ArgumentParser, name: str, *,
                    valued: bool = False) -> list[str]:
    """The other gridrun commands that have the option `name` (with `valued`, taking a value), in the order
    `gridrun --help` lists them; none where `refuser` is no command of `parser`'s."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if sub is None or refuser not in sub.choices.values():
        return []
    return [n for n, c in sub.choices.items() if c is not refuser and name in c._option_string_actions
            and (not valued or c._option_string_actions[name].nargs != 0)]


def _other_command_note(parser: argparse.ArgumentParser, refuser: argparse.ArgumentParser,
                        extras: Sequence[str]) -> str:
    """"; --concurrency is an option of `gridrun run` and `gridrun retry`" for the first of `extras` that other
    gridrun commands have and this one does not; "" for none."""
    for word in extras:
        name = word.split("=", 1)[0]
        others = _other_commands(parser, refuser, name) if name.startswith("-") else []
        if others:
            named = [f"`gridrun {c}`" for c in others]
            listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
            return f"; {name} is an option of {listed}"
    return ""


def _in_order(argv: Sequence[str], taken: set[int], rest: Sequence[str]) -> list[str]:
    """The words argparse did not know: those of `argv` at `taken`, and `rest`, the ones left of the others, in the
    order `argv` has them."""
    words, left = [], list(rest)
    for i, word in enumerate(argv):
        if i in taken:
            words.append(word)
        elif left and left[0] == word:
            words.append(left.pop(0))
    return [*words, *left]


def _foreign(args: argparse.Namespace, extras: Sequence[str], refuser: argparse.ArgumentParser) -> str:
    """What gridrun has for an option of other batch tools given to a command that sends jobs (`run`, `retry`):
    `--dry-run` or `-n` (Snakemake's, a video CLI's) is `gridrun plan M`; `-j` or `--jobs` is `--concurrency`,
    named with its number where one is given (`-j4`, `-j 4`, `--jobs=4`); short ones run together count (`-jn`,
    `-np`); "" for none of them. Given to another command, `-j` or `--jobs` is said to be `gridrun run`'s
    --concurrency."""
    sends = getattr(args, "command", None) in ("run", "retry")
    if not sends and not any(w.split("=", 1)[0] == "--jobs" or _SHORT_CLUSTER.fullmatch(w) for w in extras):
        return ""
    from .terminal import typed

    options = [o[2:] for a in refuser._actions for o in a.option_strings if o.startswith("--")]
    names, number = set(), None
    for i, word in enumerate(extras):
        name, _, value = word.partition("=")
        after = extras[i + 1] if i + 1 < len(extras) else ""
        found = _SHORT_CLUSTER.fullmatch(word)
        # a long option written with one dash (`-json`) is no cluster of short ones
        if found is not None and not difflib.get_close_matches(found["letters"], options, n=1, cutoff=0.8):
            names.update(f"-{c}" for c in found["letters"])
            if found["letters"].endswith("j"):
                number = found["number"] or (after if after.isdigit() else number)
        elif name == "--jobs":
            names.add(name)
            number = value if value.isdigit() else after if not value and after.isdigit() else number
        else:
            names.add(name)
    m = typed(args.manifest) if getattr(args, "manifest", None) else "M"
    if not sends:
        jobs = names & {"-j", "--jobs"}
        return "; the jobs at the provider at once are `gridrun run`'s --concurrency" if jobs else ""
    if names & {"--dry-run", "-n", "--dryrun"}:
        return f"; `gridrun plan {m}` is the dry run: it lists the jobs a run sends and what they cost, sending nothing"
    if names & {"-j", "--jobs"}:
        told = "--concurrency" if number is None else f"--concurrency {int(number)}"
        return f"; did you mean {told} (the jobs at the provider at once)?"
    return ""


def _resume_command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """`gridrun resume M` (other batch tools' command, or their `--resume`): gridrun has none, as a plain run
    resumes; said so, with the run to write, where argparse would list the commands."""
    first = next((i for i, w in enumerate(argv) if not w.startswith("-")), None)
    if first is None or argv[first] != "resume":
        return
    from .terminal import typed

    after = [w for w in argv[first + 1:] if not w.startswith("-")]
    m = typed(after[0]) if after else "M"
    parser.error(f"argument COMMAND: invalid choice: 'resume'; a plain `gridrun run {m}` resumes: it collects what "
                 "earlier runs left in flight and sends only the jobs not done, paying for none twice")


def _meant(parser: argparse.ArgumentParser, extras: Sequence[str]) -> str:
    """"; did you mean --budget?" for the options among `extras` spelled close to one `parser` has (`--budjet`),
    or written with one dash (`-json`, `-budjet`), each with the word it is said for where there are several; ""
    for none."""
    found = []
    for word in extras:
        name = word.split("=", 1)[0]
        close = _close_option(parser, name)
        if close is not None:
            found.append((name, close))
    if not found:
        return ""
    if len(found) == 1:
        return f"; did you mean {found[0][1]}?"
    return "; did you mean " + ", ".join(f"{m} for {w}" for w, m in found) + "?"


def _close_option(parser: argparse.ArgumentParser, name: str) -> str | None:
    """The long option of `parser` that `name`, one it does not know, most likely means: one it begins
    (`--fo` for `--force`), one spelled close to it (`--budjet`), or itself written with one dash (`-json`,
    `-budjet`); None for a short option (`-x`), a word that is no option, or one close to none."""
    options = [o[2:] for a in parser._actions for o in a.option_strings if o.startswith("--")]
    dashes = 2 if name.startswith("--") else 1 if name.startswith("-") and len(name) > 2 and name[1:2].isalpha() else 0
    if not dashes:
        return None
    bare = name[dashes:]
    begun = [o for o in options if o.startswith(bare)]  # cut short: `--fo`
    # else the name alone spelled close: "--" is no likeness
    close = begun if len(begun) == 1 else difflib.get_close_matches(bare, options, n=1)
    if close and (close[0] != bare or dashes == 1):
        return f"--{close[0]}"
    return None


def _about(line: str, more: str, *examples: str) -> dict[str, str]:
    """A command's help: `line` in the list of commands; its description, `line` and `more` (what it reads and
    writes, what a first user needs to know), and its examples, under it in `gridrun COMMAND --help`."""
    return {"help": line, "description": f"{line[:1].upper()}{line[1:]}. {more}",
            "epilog": "examples:\n" + "\n".join(f"  {e}" for e in examples)}


# Under `gridrun --help`: the first commands of a new project, and the exit codes (as the README's table has them).
_FIRST_STEPS = """\
first steps:
  gridrun init                write demo.yaml, a first manifest (the built-in
                              simulator: no key, no cost)
  gridrun validate demo.yaml  check it: errors name the file, line and field
  gridrun plan demo.yaml      its jobs and what they cost; sends nothing
  gridrun run demo.yaml       run it; run it again to resume (a job done is
                              not paid again)

`gridrun COMMAND --help` describes a command. A manifest's fields are described in the README's "A manifest"
section and in the schema its first line names (the file `gridrun init` writes has it).

exit codes:
  0    every job done (or cancelled by `gridrun cancel`)
  1    jobs failed, were rejected, expired or are of unknown outcome; the
       provider refused the account or could not be reached; a folder or the
       state cannot be written; another gridrun holds the lock
  2    an invalid manifest or command line; the provider's API key unset or
       pasted with more than the key (before anything is sent)
  3    the budget: the run refused before it starts, or stopped at it
       (--allow-partial) with jobs not sent
  4    jobs still rendering at their --timeout were left at the provider
       (`gridrun run` collects them)
  5    `status --watch` only: the run's process is gone
  130  interrupted (Ctrl-C, SIGTERM, a hangup)"""

_STATE = "its state (.gridrun/ beside the manifest)"


def _parser(*, with_sim: bool = True) -> argparse.ArgumentParser:
    p = _Parser(prog="gridrun", description="Run YAML batch manifests against paid video-generation APIs, paying once per job.",
                epilog=_FIRST_STEPS)
    p.add_argument("--version", action="version", version=f"gridrun {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def manifest_cmd(name: str, help: dict[str, str]) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, **help)
        sp.add_argument("manifest", help="the manifest YAML file")
        sp.add_argument("--max-jobs", type=_knob("max_jobs"), default=None, help="the job-count cap (default: run.max_jobs, else 1000)")
        return sp

    sp = sub.add_parser("init", **_about(
        "write a first manifest (the demo: 12 jobs on the built-in simulator, no cost)",
        "Writes FILE (default demo.yaml): a style x seed grid of 12 jobs with provider: sim, the built-in simulator, "
        "which needs no key, no network and pays nothing; its comments say what each field does. An existing file is "
        "kept. Then validate, plan and run it.",
        "gridrun init && gridrun run demo.yaml",
        "gridrun init grid.yaml"))
    sp.add_argument("file", nargs="?", default="demo.yaml",
                    help="where to write it (default: demo.yaml; '-': standard output); an existing file is kept")
    sp.set_defaults(fn=cmd_init)

    sp = manifest_cmd("validate", _about(
        "check a manifest without running anything",
        "Reads the manifest and the data files it names, and checks them against the manifest schema and the "
        "model's parameters; sends nothing and writes nothing. Each error names the file, line, column and field "
        "(exit 2); a warning does not fail it.",
        "gridrun validate grid.yaml"))
    sp.set_defaults(fn=cmd_validate)

    sp = sub.add_parser("matrix", **_about(
        "print the combinations of a matrix, in order",
        "Reads a manifest, or a YAML file holding only a matrix mapping (its axes, or `matrix:` and them), and prints one line per combination of its "
        "values (the jobs before their parameters are checked); reads no state, sends nothing.",
        "gridrun matrix grid.yaml",
        "gridrun matrix grid.yaml --json"))
    sp.add_argument("file", help="a manifest, or a YAML file holding only a matrix mapping (its axes, or `matrix:` and them)")
    sp.add_argument("--json", action="store_true", help="a JSON list of objects")
    sp.set_defaults(fn=cmd_matrix)

    sp = manifest_cmd("plan", _about(
        "show the jobs, their parameters and cost; pays nothing",
        f"Reads the manifest and {_STATE}, and prints each job with its size and cost, and what `gridrun run` would "
        "do: the jobs it would send (and pay for), those done before (cached, not paid again), those in flight. "
        "Sends nothing and writes nothing; the endpoint line says which provider a run would pay.",
        "gridrun plan grid.yaml",
        "gridrun plan grid.yaml --explain --all",
        "gridrun plan grid.yaml --budget 10"))
    sp.add_argument("--explain", action="store_true", help="where every job and parameter came from")
    sp.add_argument("--json", action="store_true", help="the plan as JSON (format gridrun.plan/1)")
    sp.add_argument("--all", action="store_true", help="list every job, even in a large plan")
    sp.add_argument("--force", action="store_true",
                    help="what `gridrun run --force` would send and cost: the jobs done re-rendered, paid again")
    sp.add_argument("--resume", action="store_true",
                    help="with --force: what `gridrun run --force --resume` would send and cost: only the done jobs "
                         "the last --force run left as they were")
    sp.add_argument("--retry", action="store_true",
                    help="what `gridrun retry` would send and cost: the failed, rejected, expired and cancelled "
                         "jobs sent again, paid again (an expired one asked for a fresh URL first, at no cost)")
    sp.add_argument("--unknown", action="store_true",
                    help="with --retry: what `gridrun retry --unknown` would send (the jobs of unknown outcome "
                         "instead; may pay twice)")
    _selection_flags(sp, "with --retry: preview sending again")
    sp.add_argument("--budget", type=_knob("budget_usd"),
                    help="whether the plan fits `gridrun run --budget BUDGET`: the budget in USD it is measured "
                         "against (overrides run.budget_usd)")
    sp.add_argument("--failure-retries", type=_knob("failure_retries"),
                    help="what `gridrun run --failure-retries N` could add at most, each job sent failing every "
                         "time (default: run.failure_retries, else 0)")
    sp.set_defaults(fn=cmd_plan)

    def run_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--concurrency", type=_knob("concurrency"),
                        help=f"jobs at the provider at once (default: run.concurrency, else {RUN_DEFAULTS['concurrency']})")
        sp.add_argument("--budget", type=_knob("budget_usd"), help="budget of this run in USD, not of the manifest's runs together (overrides run.budget_usd)")
        sp.add_argument("--allow-partial", action="store_true", help="start even if the plan exceeds the budget; stop at it")
        sp.add_argument("--retries", type=_knob("retries"),
                        help=f"retries of a request on transient errors (default: run.retries, else {RUN_DEFAULTS['retries']})")
        sp.add_argument("--failure-retries", type=_knob("failure_retries"),
                        help="new paid attempts per job after the provider failed its render (default: "
                             f"run.failure_retries, else {RUN_DEFAULTS['failure_retries']})")
        sp.add_argument("--poll-interval", type=_knob("poll_interval"),
                        help="fixed seconds between polls (default: run.poll_interval, else scheduled from the "
                             "expected render time)")
        sp.add_argument("--timeout", type=_knob("timeout"),
                        help="per-job deadline in seconds from its create (for a job an earlier run sent, from "
                             "when this run takes it up): stop waiting, never the job (an unanswered create is not "
                             "sent again past it; --request-timeout bounds each request; default: run.timeout, else "
                             "none: wait for each job to end)")
        sp.add_argument("--request-timeout", type=_knob("request_timeout"), default=30.0,
                        help="seconds one HTTP request may take (at least 1; default: %(default)g)")
        sp.add_argument("--fail-fast", action="store_true", help="stop submitting after the first failed job")
        sp.add_argument("--leave-in-flight", action="store_true",
                        help="run even though jobs the last run sent are rendering still and the changed manifest "
                             "no longer has them (their videos are then not downloaded), or jobs in flight were sent "
                             "to another endpoint than the one now (left as they are, for a run there)")
        sp.add_argument("--same-account", action="store_true",
                        help="the API key now is of the same account as the key jobs in flight were sent with (a "
                             "key rotated, the old one revoked): ask about them with it, rather than refusing to "
                             "start (one the account does not know is recorded unknown, never sent again but by "
                             "`retry --unknown`)")
        sp.add_argument("--json", action="store_true", help="progress as one JSON object per line")
        sp.add_argument("--no-report", action="store_true",
                        help="write no report.html during or after the run (`gridrun report` writes it later)")

    sp = manifest_cmd("run", _about(
        "run a manifest (resumes an earlier run of it)",
        f"Plans the manifest, records each job in {_STATE} before sending it, then follows the jobs and downloads "
        "their videos into the output folder (outputs/<name>/ beside the manifest, with report.html). A job done "
        "before is not sent again, and a run stopped (Ctrl-C, a crash) resumes where it was when run again: no job "
        "is paid twice. The built-in simulator (provider: sim, the default) is free and needs no key; against "
        "Lumenfall the manifest says provider: lumenfall and LUMENFALL_API_KEY holds the key (LUMENFALL_BASE_URL "
        "another endpoint). `gridrun --help` lists the exit codes.",
        "gridrun run grid.yaml --budget 10",
        "LUMENFALL_API_KEY=lmnfl_... gridrun run grid.yaml  # provider: lumenfall"))
    run_flags(sp)
    sp.add_argument("--force", action="store_true", help="re-run jobs that are done (pays again)")
    sp.add_argument("--resume", action="store_true",
                    help="with --force: re-render only the done jobs the last --force run left as they were (a stop: "
                         "its budget, a full disk, a kill), not those it re-rendered")
    sp.set_defaults(fn=cmd_run)

    sp = manifest_cmd("retry", _about(
        "run (or resume) a manifest, sending its failed jobs again too",
        "As `gridrun run`, and sends again the jobs that failed, were rejected, expired or were cancelled (each "
        "paid again; an expired one is first asked for a fresh URL, at no cost, and sent again only if the "
        "provider no longer has it or gives none); with --unknown, those of unknown outcome instead (their create may have been made: may pay "
        "twice). `gridrun plan --retry` shows what it would send and cost.",
        "gridrun retry grid.yaml",
        "gridrun plan grid.yaml --retry --unknown && gridrun retry grid.yaml --unknown"))
    run_flags(sp)
    sp.add_argument("--unknown", action="store_true", help="re-submit jobs of unknown outcome instead (may pay twice)")
    _selection_flags(sp, "send again")
    sp.set_defaults(fn=cmd_retry)

    sp = manifest_cmd("recover", _about(
        "rebuild a lost or behind state from the videos in the output folder, paying nothing",
        f"Plans the manifest and records in {_STATE} as done, with the take its sidecar records, each job whose "
        "finished video is at its path, whole, beside gridrun's sidecar of that very job: the free way on from a "
        "state lost (no backup), emptied, or restored from before a later run, which `plan` and `run` refuse. Jobs "
        "the state holds are left as they are. Sends nothing to the provider and moves no file; says what it found "
        "and what `gridrun run` then costs.",
        "gridrun recover grid.yaml --dry-run",
        "gridrun recover grid.yaml && gridrun plan grid.yaml"))
    sp.add_argument("--dry-run", action="store_true", help="say what it would find and record; write nothing")
    sp.add_argument("--key-part", metavar="PART",
                    help="the part of the idempotency keys this state sent under, named where the output folder's "
                         "lock does not tell it (a lock an older gridrun wrote, after a run that wrote no video): "
                         "the takes whose sidecars carry it are taken for this state's (recover says the parts found)")
    sp.add_argument("--json", action="store_true", help="what it found as one JSON object (format gridrun.recover/1)")
    sp.set_defaults(fn=cmd_recover)

    sp = sub.add_parser("status", **_about(
        "counts, spend and problems of the latest run (works during a run)",
        f"Reads {_STATE} and prints the latest run's jobs by status, what it spent and reserved, the jobs with "
        "problems and the next step; sends nothing, and works while a run goes on (--watch follows it).",
        "gridrun status grid.yaml",
        "gridrun status grid.yaml --watch",
        "gridrun status grid.yaml --runs"))
    sp.add_argument("manifest", nargs="?", help="the manifest (default: the only state folder here)")
    sp.add_argument("--state", help="the state folder (default .gridrun beside the manifest)")
    sp.add_argument("--json", action="store_true",
                    help="as JSON (with --watch: one progress object per line, like `run --json`)")
    sp.add_argument("--runs", action="store_true",
                    help="list the manifest's runs instead (without a manifest: every run of the state folder): "
                         "the ids `report --run` and `--compare` take, when each started, how it ended, its jobs "
                         "done and spending, and the command that started it")
    sp.add_argument("--last", type=_run_count, metavar="N",
                    help=f"with --runs: list only the newest N runs (default {RUNS_SHOWN}; 0: all of them; the title still "
                         "counts them all); --json lists them all unless given")
    sp.add_argument("--watch", action="store_true",
                    help="follow the latest run live until it ends; exit with the run's exit code (5: its process is gone)")
    sp.add_argument("--every", type=_knob("every"), metavar="SECONDS",
                    help="with --watch: seconds between two readings of the state (default 2, at least 0.2)")
    sp.add_argument("--manifest-copy", type=int, metavar="RUN",
                    help="write run RUN's copy of the manifest (.runs/run-RUN.yaml in its output folder) again from "
                         "the state when it is missing, and print its path")
    sp.set_defaults(fn=cmd_status)

    sp = sub.add_parser("cancel", **_about(
        "cancel a manifest's jobs in flight at the provider",
        f"Reads {_STATE}, asks the provider to cancel each of the manifest's jobs sent and not yet ended (the "
        "queued ones first), and records its answers; jobs done and their videos are kept.",
        "gridrun cancel grid.yaml"))
    sp.add_argument("manifest", help="the manifest YAML file")
    sp.add_argument("--void-unsent", action="store_true",
                    help="put back as not sent the jobs a stopped run left sending that the provider's request log "
                         "does not list an hour after their send, whether the manifest still has them or not (a "
                         "create a gateway still holds would be made and billed unrecorded)")
    sp.add_argument("--same-account", action="store_true",
                    help="the API key now is of the same account as the key jobs in flight were sent with (a key "
                         "rotated, the old one revoked): cancel them with it too")
    sp.add_argument("--state", help="the state folder whose jobs to cancel (default: the one the manifest names, "
                                    ".gridrun beside it unless state_dir: says otherwise)")
    sp.set_defaults(fn=cmd_cancel)

    sp = sub.add_parser("report", **_about(
        "write report.html for the latest run (--run N: run N)",
        f"Reads {_STATE} and writes report.html into the output folder (outputs/<name>/ beside the manifest): each "
        "job with its video, parameters, cost and problems, in one static page; sends nothing. A run writes it "
        "itself, unless --no-report.",
        "gridrun report grid.yaml",
        "gridrun report grid.yaml --compare 1 2"))
    sp.add_argument("manifest", help="the manifest YAML file")
    which = sp.add_mutually_exclusive_group()
    which.add_argument("--run", type=int, metavar="RUN",
                       help="the report of this run of the manifest (an earlier one: report-run-RUN.html)")
    which.add_argument("--compare", nargs=2, type=int, metavar=("RUN_A", "RUN_B"),
                       help="two run ids side by side, in compare-RUN_A-RUN_B.html in the output folder the manifest "
                            "names now")
    sp.set_defaults(fn=cmd_report)

    sp = sub.add_parser("export", **_about(
        "write results.jsonl / .csv / .json for the latest run (--run N: run N)",
        f"Reads {_STATE} and writes the results, a row per job, into the output folder (outputs/<name>/ beside the "
        "manifest); sends nothing. Their fields are described in EXPORTS.md (reports/ in the source).",
        "gridrun export grid.yaml --format csv"))
    sp.add_argument("manifest", help="the manifest YAML file")
    sp.add_argument("--format", action="append", choices=("jsonl", "csv", "json"), help="repeatable; default all")
    sp.add_argument("--run", type=int, metavar="RUN",
                    help="the results of this run of the manifest (an earlier one: results-run-RUN.<format>)")
    sp.set_defaults(fn=cmd_export)

    sim = sub.add_parser("sim", **_about(
        "the built-in provider simulator",
        "A manifest with provider: sim (the default) runs against it in process; `gridrun sim serve` serves it over "
        "HTTP, as a real provider's endpoint.",
        "gridrun sim serve --port 8000"))
    simsub = sim.add_subparsers(dest="sim_command", metavar="COMMAND")
    sp = simsub.add_parser("serve", **_about(
        "serve the simulator over HTTP on 127.0.0.1",
        "Serves the simulator of the provider's API until stopped (Ctrl-C): free placeholder videos, for trying a "
        "run the way a real provider's requests go. To run a manifest at it: provider: lumenfall with "
        "LUMENFALL_BASE_URL set to the address it prints (http://127.0.0.1:PORT/v1) and any LUMENFALL_API_KEY (the "
        "--api-key one, if given), or provider: sim with that address as the manifest's base_url: (SIM_API_KEY set "
        "to the --api-key, if given). A run's polls follow the simulator's render time.",
        "gridrun sim serve --port 8000 --render-time 1",
        "export LUMENFALL_BASE_URL=http://127.0.0.1:8000/v1 LUMENFALL_API_KEY=x",
        "gridrun run grid.yaml  # provider: lumenfall"))
    if with_sim:  # the simulator (numpy, PyAV, uvicorn) loads only for `gridrun sim ...`
        from .sim.serve import add_arguments

        add_arguments(sp)
    sp.set_defaults(fn=cmd_sim_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from .outputs import UNWRITTEN
    from .terminal import fit

    lines_begin()  # each call a command of its own: no end event written, no standard stream failed yet
    UNWRITTEN.clear()
    out.quiet = err.quiet = False
    fit(sys.stdout, sys.stderr)
    argv = list(sys.argv[1:] if argv is None else argv)
    bugs.command_line = argv  # what a crash file names as the command (`bugs.crash_file`)
    limits.command_in_progress = argv[0] if argv else ""  # what too many open files is told to do (`open_files_fix`)
    parser = _parser(with_sim=argv[:1] == ["sim"])
    try:
        args = _parse(parser, argv)
    except _UsageExit as exc:  # said on standard error; a script reading JSON lines waits for their end too
        if writes_json_lines(argv):
            from .progress import Progress

            Progress(err, json_lines=True).failed(status=None, exit_code=2, errors=[exc.message])
        else:  # `plan`, `status`, `matrix` with --json: their error object (none read: no manifest in it)
            # but the plan's, which names the manifest its words give (`-budjet 3 M`: M, not 3) as the plan does
            named = exc.manifest if writes_json_object(argv) == "plan" and exc.manifest is not None else None
            write_end(argv, None, 2, exc.message, manifest=None if named is None else os.path.abspath(named))
        raise
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
        # `--help`, `--version`: written by argparse, which drops a failed write; said as any command's output is,
        # exit 1 naming the stream, not 0 with the text lost, nor the interpreter's own complaint as it exits
        raise SystemExit(_said_unwritten(0, argparse.Namespace())) from None
    args.argv = argv  # what a run records of the command that started it (`status --runs` shows it)
    if getattr(args, "format", "unset") is None:
        args.format = ["jsonl", "csv", "json"]
    gone = _folder_gone(args)
    if gone is not None:
        if writes_json_lines(argv):  # a script reading the events waits for their end
            from .progress import Progress

            Progress(err, json_lines=True).failed(status=None, exit_code=gone.exit_code, errors=[str(gone)])
        return _failed(gone, args)
    try:
        return _said_unwritten(int(args.fn(args) or 0), args)
    except KeyboardInterrupt as exc:
        return _interrupted(args, argv, exc)
    except BaseExceptionGroup as group:
        # Ctrl-C or SIGTERM met by the tasks of a run's task group before its own handler took the signals
        # comes out as a group of interrupts: an interrupt all the same, not a traceback. Another error of a
        # run's task (a disk the run cannot write, a bug) is said as the error it is.
        rest = group.split(KeyboardInterrupt)[1]
        if rest is None:
            return _interrupted(args, argv, group)
        exc = _first_error(rest)
        if isinstance(exc, BrokenPipeError):
            return 0
        if not isinstance(exc, (GridrunError, sqlite3.Error, OSError)):
            return _unexpected(exc, args, argv)
        return _failed(exc, args)
    except BrokenPipeError:
        return 0
    except (GridrunError, sqlite3.Error, OSError) as exc:
        return _failed(exc, args)
    except Exception as exc:  # noqa: BLE001 (a bug, or memory run out: one line to report, not a traceback)
        return _unexpected(exc, args, argv)


def _folder_gone(args: argparse.Namespace) -> UsageError | None:
    """The refusal of a command whose manifest, file or state folder is given relative (or, for `status`, not
    given: the folder it is run in) where the working folder was removed since the shell entered it: no relative
    path can be found then, and the system's "No such file or directory" names neither the path nor why. None
    where the folder is there, or every path absolute."""
    from .localpaths import FOLDER_GONE, folder_gone

    if args.command == "status" and args.manifest is None and args.state is None and folder_gone(".") is not None:
        return UsageError(FOLDER_GONE[0].upper() + FOLDER_GONE[1:])
    for name in ("manifest", "file", "state"):
        word = getattr(args, name, None)
        if isinstance(word, str) and word != "-" and (gone := folder_gone(word)) is not None:
            return UsageError(visible(gone))
    return None


def _locale_refused(exc: BaseException, argv: Sequence[str]) -> str | None:
    """What to say of a file name this process could not write or read in its file-name encoding, where that is
    not UTF-8 (`LC_ALL=C PYTHONUTF8=0`): the locale is the cause, and the command again in a UTF-8 one the fix.
    None for any other error."""
    from .localpaths import fs_encoding, locale_said

    encoding = fs_encoding()
    if encoding is None or not isinstance(exc, (UnicodeEncodeError, UnicodeDecodeError)):
        return None
    try:
        if codecs.lookup(exc.encoding).name != encoding:
            return None
    except LookupError:
        return None
    bad = exc.object[exc.start:exc.end]
    text = ascii(bad if isinstance(bad, str) else bad.decode("latin-1"))  # escaped: the locale cannot show it either
    again = " ".join(typed(w) for w in ["LC_ALL=C.UTF-8", "gridrun", *argv])
    return f"a file name holding {text}: {locale_said('it cannot be written in')}: `{again}`"


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The first error `group` gathers, out of the groups within it."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _failed(exc: BaseException, args: argparse.Namespace) -> int:
    """Say the error `exc` that ended the command, a line for each it holds; its exit code. `status --json` (and
    `--runs --json`) print one JSON object of it on standard output too, as `run --json`'s `end` event and a refused
    `plan --json` do: a script reading standard output reads JSON whatever happened."""
    run = getattr(args, "run", None) if args.command in ("report", "export") else None
    lines = _error_lines(exc, args.command, _manifest_given(args),
                         again=None if run is None else f"{args.command} --run {run}")
    for w in getattr(exc, "warnings", ()):  # what may explain the errors (planning's: a value a comment cut short)
        err.print(f"[yellow]warning[/yellow]: {escape(_lines_visible(w))}")
    for e in lines:
        err.print(f"[red]error[/red]: {escape(_lines_visible(e))}", markup=True, highlight=False)
    if writes_json_object(args.argv) is not None:  # where it has not printed its document, nor this object yet
        more: dict[str, Any] = {}
        if isinstance(exc, ManifestErrors) and exc.not_listed:
            more["errors_not_listed"] = exc.not_listed
        if args.command != "status" and getattr(exc, "warnings", ()):
            more["warnings"] = list(exc.warnings)
        write_end(args.argv, None, _exit_code(exc), lines, manifest=_json_manifest(args), **more)
    if isinstance(exc, ManifestErrors):
        if exc.not_listed:
            err.print(f"... and {exc.not_listed:,} more errors, not listed")
        err.print(f"{exc.total:,} errors; nothing was run")
    return _exit_code(exc)


def _json_manifest(args: argparse.Namespace) -> str | None:
    """The manifest the error object of `plan`, `recover`, `status` or `matrix` with --json names
    (`entry.error_object`): `status`'s the manifest's name, once read; `plan`'s and `recover`'s its absolute path,
    as the plan names it; `matrix`'s the file as given (its object gives it so and absolute). None where there is
    none."""
    given = getattr(args, "file" if args.command == "matrix" else "manifest", None)
    if args.command == "status":
        given = getattr(given, "name", None)
    if args.command in ("plan", "recover") and isinstance(given, str):
        with contextlib.suppress(OSError):  # the working folder removed: as given
            return os.path.abspath(given)
    return given if isinstance(given, str) else None


def _unexpected_error(exc: BaseException) -> bool:
    """`exc` is an error gridrun did not expect (a bug; memory run out), none it says with its own remedy."""
    return isinstance(exc, Exception) and not isinstance(exc, (GridrunError, sqlite3.Error, OSError))


def _unexpected(exc: BaseException, args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    """Say an error gridrun did not expect (a bug; memory run out; a package it needs missing): what it was and
    where, what to do; exit 1 (2 for a missing package). A run it stopped has recorded its end (crashed), its jobs
    as it left them, what it paid for kept: the next run collects the jobs left in flight at no new cost. A file
    name the locale's encoding cannot hold (`_locale_refused`) is said as that, exit 2."""
    missing = missing_package(exc)
    locale = None if missing is not None else _locale_refused(exc, argv)
    line = missing or locale or _unexpected_line(exc, _manifest_given(args))
    err.print(f"[red]error[/red]: {escape(_lines_visible(line))}", highlight=False)
    if args.command in ("run", "retry") and _crashed_here(args):
        err.print("the run stopped there, recorded crashed, every job as it last recorded it: `gridrun status` shows "
                  "them; `gridrun run` goes on, collecting the paid jobs left in flight at no new cost, and "
                  "`gridrun report` writes the report", markup=False, highlight=False)
    code = MISSING_DEPENDENCY if missing is not None else 1 if locale is None else 2
    # where the command failed before its JSON lines (or its JSON document) began: the library's import, say
    write_end(argv, None, code, line, manifest=_json_manifest(args))
    return code


def _unexpected_line(exc: BaseException, manifest: str | None = None) -> str:
    """What an error gridrun did not expect was, and where it was raised, every API key redacted; for memory run
    out, what to do; for a bug, the crash file written with its traceback (`bugs.crash_file`, beside the state of
    `manifest` where none was opened), to report with the line."""
    from .bugs import bug_said, exception_text, raised_at

    if too_many_open_files(exc):  # a library loaded late, an event loop's own descriptors
        return open_files_fix()
    if _out_of_memory(exc):
        return (f"out of memory ({exception_text(exc)}){raised_at(exc)}: free memory (or raise `ulimit -v`), or "
                "lower run.concurrency")
    return f"unexpected error, {bug_said(exc, near=manifest)}"


def _crashed_here(args: argparse.Namespace) -> bool:
    """The latest run of the command's manifest is this process's, recorded crashed (an error stopped it once it
    had recorded its run; before, nothing was recorded or sent)."""
    manifest = _manifest_given(args)
    if manifest is None:
        return False
    # A package the library needs missing (`entry.missing_package`) fails its import here: then no run began.
    try:
        from . import api

        run = api.status(Path(manifest)).run
    except Exception:  # noqa: BLE001 (no state, or one that cannot be read: no run of this process to speak of)
        return False
    return run.status == "crashed" and run.pid == os.getpid()


def _out_of_memory(exc: BaseException) -> bool:
    """`exc` says the process has no memory left (`ulimit -v`, a full machine): no allocation, no new thread (its
    stack), no library mapped in as a module is first imported."""
    if isinstance(exc, MemoryError):
        return True
    said = str(exc)
    if isinstance(exc, RuntimeError):
        return said.startswith(("can't start new thread", "can't allocate lock"))
    return isinstance(exc, ImportError) and any(s in said for s in NO_MEMORY_TO_IMPORT)


def _said_unwritten(code: int, args: argparse.Namespace) -> int:
    """`code`, the command's own, once it has said which standard stream it could not write (`>/dev/full`;
    `outputs.lost`), if any: then 1 where it would have been 0. The stream is named, not a disk to free, and of a
    run, how it ended: it ran, and the state has its outcome."""
    from .outputs import UNWRITTEN, lost, mute

    try:
        sys.stdout.flush()
    except BrokenPipeError:
        mute(sys.stdout)
    except OSError as exc:
        lost(sys.stdout, exc)
    for name, reason in UNWRITTEN.items():
        ended = getattr(args, "run_ended", None)
        run = (f"; the run itself ended {ended}: `gridrun status {typed(args.manifest)}` shows it"
               if ended else "")
        err.print(f"[red]error[/red]: {name} could not be written: {escape(reason)}{escape(run)}", highlight=False)
    return (code or 1) if UNWRITTEN else code


def _say(text: str) -> None:
    """`text` and a newline on standard output, plainly (JSON, a manifest's text): a reader gone ends the output,
    and a write that fails otherwise is said at the command's end (`_said_unwritten`)."""
    from .outputs import lost, mute

    document_begun()
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        mute(sys.stdout)
    except OSError as exc:
        lost(sys.stdout, exc)


def _manifest_given(args: argparse.Namespace) -> str | None:
    """The manifest file the command was given, as given (`status` loads it in its place), whose own state folder
    it reads; else None (none given, or another state folder: `status --state`, which a run does not write)."""
    m = getattr(args, "manifest_file", getattr(args, "manifest", None))
    return m if isinstance(m, str) and getattr(args, "state", None) is None else None


# What the state store says where no state file is there yet (`Store`); `status`, `report` and `export` of a
# manifest add the next step to it.
NO_STATE_YET = "no state yet (nothing has run here)"


def _state_beside_target(manifest: str, command: str) -> str | None:
    """For a manifest given through a link to its file, with no state beside the link: the state beside the file
    it leads to, where its runs are, and the command that reads them there; rather than the run that would start
    a new state beside the link (and pay for every job again). None for another manifest, or no state there."""
    try:
        if not os.path.islink(manifest):
            return None
        target = os.path.realpath(manifest)
        state = os.path.join(os.path.dirname(target), ".gridrun")
        if not os.path.isfile(os.path.join(state, "state.db")):
            return None
    except (OSError, ValueError):
        return None
    return (f"{manifest} is a link to {target}, beside which {state} holds runs: `gridrun {command} {typed(target)}` "
            "reads them (a run through the link would start a new state beside it)")


def _error_lines(exc: BaseException, command: str, manifest: str | None = None, *,
                 again: str | None = None) -> list[str]:
    """What the user reads of the error that ended `command` (given `manifest`, if any), a line for each error it
    holds. `again`: the command, with the options that chose what it writes (`report --run 1`), a write problem
    says to run again; `command` by default."""
    from .state import remedy

    if isinstance(exc, ManifestErrors):
        return [str(e) for e in exc.errors]
    if (isinstance(exc, NotRecordedError) and not isinstance(exc, RunStartingError) and manifest is not None
            and command in ("status", "report", "export") and str(exc).endswith(NO_STATE_YET)):
        return [f"{exc}; {_state_beside_target(manifest, command) or runs_it_first(manifest)}"]
    if isinstance(exc, GridrunError):
        return [str(exc)]
    if isinstance(exc, sqlite3.Error):  # the state store: read-only, on a disk SQLite cannot lock, damaged
        return [f"the state store (state.db in the state folder, .gridrun/ by default) cannot be used: {exc}; "
                + remedy(exc)]
    if isinstance(exc, OSError):  # the local file system: a folder in the way, no permission, a full disk
        return [write_problem(exc, then=f"`gridrun {again or command}` again")]
    return ["interrupted"] if isinstance(exc, KeyboardInterrupt) else [str(exc)]


def _exit_code(exc: BaseException) -> int:
    """The exit code of a command ended by `exc`: a `GridrunError`'s own, 130 for Ctrl-C, else 1."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return exc.exit_code if isinstance(exc, GridrunError) else 1


def entry() -> None:
    """The `gridrun` console script as installed before `runner.entry` was its target."""
    from .entry import entry

    entry()


