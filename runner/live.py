"""What a run keeps up to date beside its paid work: deferred state writes committed, new videos handed to
the poster worker, and the live report rebuilt when it is due. None of it runs on a job's task, and a
failure to draw a view is recorded as an error, never raised into the run.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, MutableSequence, Sequence
from pathlib import Path
from typing import Any

import anyio

from .bugs import bug_said, exception_text
from .entry import interruptible
from .errors import GridrunError
from .limits import FILES_RAN_OUT, open_files_fix, too_many_open_files
from .outputs import POSTERS_NOT_WRITTEN, told, write_problem
from .state import Store

# Deferred state writes are committed, and new outputs handed to the poster worker, this many seconds after
# the write that needs it (one commit gathers every write of that moment) ...
FLUSH_DELAY = 0.05
# ... and with nothing to do the housekeeping wakes only this often (the report's clock, outputs due):
# during long renders a run is idle, and waking 20 times a second cost ~5 ms of CPU per second.
IDLE_TICK = 1.0
# A live report rebuild that took t seconds is followed by none for REPORT_SHARE·t seconds: the report never takes
# more than 1/40 of a CPU. At 10,000 jobs a live rebuild takes 0.7-0.8 s on a loaded 2-CPU machine
# (`bench/report_bench.py`), so rebuilds come about 30 s apart there, and `report_every` (10 s) rules up to about
# 3,500 jobs; an open page loads the snapshot's stamp every few seconds and reloads only when a rebuild came.
REPORT_SHARE = 40
# A live report is rebuilt only after a job changed state, or when the last build is this many seconds old
# (its clock and wall time): during long renders nothing on the page moves.
REPORT_STALE = 60.0
# New outputs go to the poster worker in batches of up to this many, or after a second.
OUTPUT_BATCH = 64
# The run records that it is alive this often (`runs.seen_at`): a run killed during long renders, which
# records nothing else meanwhile, is then known to have gone on until about then.
HEARTBEAT = 5.0


def rebuilt_within(report_every: float, build_seconds: float) -> float:
    """The longest a run going on leaves its live report as it is, in seconds, given how long a build takes: a
    rebuild waits `report_every` (REPORT_SHARE builds' time, if longer) and, with nothing moved, REPORT_STALE;
    then it takes its time. An open page that saw no new snapshot for well over this says the run stopped."""
    return max(report_every, REPORT_SHARE * build_seconds, REPORT_STALE) + build_seconds


class LiveViews:
    """The housekeeping of one run. The executor counts state changes in `changes`, calls `nudge()` after a
    deferred write and `saved(path)` for each new video, and runs `loop()` on its task group."""

    def __init__(
        self,
        store: Store,
        *,
        report: Callable[[bool | None], Path | None] | None,
        posters: Callable[[Sequence[Path]], None] | None,
        report_every: float,
        errors: MutableSequence[str],
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        # report(final) builds the report, live builds in a worker thread; report(None) marks the page out of date
        self.report = report
        self.posters = posters          # given new output files, in a worker thread
        self.report_every = report_every
        self.errors = errors
        self.clock = clock
        self.changes = 0                # state changes so far: a live report is rebuilt only after one
        self._report_changes = -1       # ... counted at the start of the last build
        # The first live report waits a second: the first creates go out before the report is built.
        self._last_report = clock() - report_every + min(1.0, report_every)
        self._report_cost = 0.0
        self._reporting = False
        self._outputs: list[Path] = []
        self._outputs_busy = False
        self._outputs_at = 0.0
        self._posters_failed: list[Any] = []  # the posters not written so far (`report.PosterNotWritten`)
        self._work: anyio.Event | None = None  # set by a deferred write or a new output (made in loop())
        self._tg: anyio.abc.TaskGroup | None = None
        self._seen_at = clock()
        self.report_error: str | None = None  # why the final report could not be written
        # What the run's heartbeat records beside that it is alive (`Store.seen`'s `checks`): its next check of the
        # provider, the provider's last answer and when its jobs are expected to end before it has a pace, for
        # `status` in another process; None: nothing of the kind
        self.checks: Callable[[], tuple[Any, ...]] | None = None
        self.folder: Path | None = None  # the output folder the report and posters are written in

    def nudge(self) -> None:
        """Wake the housekeeping: something waits for it (see FLUSH_DELAY)."""
        if self._work is not None:
            self._work.set()

    def saved(self, path: Path) -> None:
        """A new video is in place: its poster is due."""
        if self.posters is not None:
            self._outputs.append(path)
            self.nudge()

    async def loop(self) -> None:
        """Wake after each nudge (FLUSH_DELAY later) or every IDLE_TICK, and do what is due; until cancelled."""
        idle = min(IDLE_TICK, self.report_every)
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._work = anyio.Event()
            while True:
                if not (self.store.pending or self._outputs):
                    with anyio.move_on_after(idle):
                        await self._work.wait()
                self._work = anyio.Event()
                await anyio.sleep(FLUSH_DELAY)
                self.housekeeping()

    def housekeeping(self) -> None:
        """Record that the run is alive when that is due; commit deferred writes; start the poster worker and
        the live report when they are due."""
        if self.store.run_id and self.clock() - self._seen_at >= HEARTBEAT:
            self._seen_at = self.clock()
            self.store.seen(self.store.run_id, None if self.checks is None else self.checks())
        self.store.flush()
        assert self._tg is not None
        if self._outputs and not self._outputs_busy and \
                (len(self._outputs) >= OUTPUT_BATCH or self.clock() - self._outputs_at >= 1.0):
            self._outputs_busy = True
            batch, self._outputs = self._outputs, []
            self._tg.start_soon(self._posters_in_thread, batch)
        since = self.clock() - self._last_report
        if self.report is not None and not self._reporting and \
                since >= max(self.report_every, REPORT_SHARE * self._report_cost) and \
                (self.changes != self._report_changes or since >= REPORT_STALE):
            self._reporting = True
            self._report_changes = self.changes
            self._tg.start_soon(self._report_in_thread)

    def final_report(self) -> Path | None:
        """The report once the run has ended, every deferred write committed; None, and `report_error`
        set, when it could not be written (the run's work stands: `gridrun report` writes it later)."""
        if self.report is None:
            return None
        self.store.flush()
        try:
            with interruptible(), told() as notes:  # a Ctrl-C costs the report, even once signals are held
                try:
                    written = self.report(True)
                finally:  # its posters made before the page failed are said all the same
                    self._posters_said(notes)
            # the report now shows the run as it ended: a rebuild that failed during it is no error of the run's
            for said in [e for e in self.errors if e.startswith(NOT_REBUILT)]:
                self.errors.remove(said)
            return written
        except Exception as exc:  # a report is a view: the paid work is done and recorded
            self.report_error = self._not_written(exc)
        except KeyboardInterrupt:  # Ctrl-C once the run has ended: the report is left, the run's outcome stands
            self.report_error = "report not written: interrupted"
            self.final_report_lost()
        if MOVED_FIX in self.report_error:  # the folder moved: said of the final report, not again of a rebuild
            for said in [e for e in self.errors if e.startswith(NOT_REBUILT) and MOVED_FIX in e]:
                self.errors.remove(said)
        self.errors.append(self.report_error)
        return None

    def final_report_lost(self) -> None:
        """Where the run ended without its final report for a Ctrl-C: the page it leaves, written as it went on,
        tells a tab open on it that it is out of date and what writes it (`report(None)`, `report.
        mark_out_of_date`); a second Ctrl-C, or a stamp that cannot be written, leaves it as it was."""
        if self.report is None:
            return
        with contextlib.suppress(Exception, KeyboardInterrupt):
            self.report(None)

    def _posters_said(self, notes: Sequence[tuple[str, str]]) -> None:
        """Add to the run's errors the warning of the final report's posters not written (`report.
        posters_not_written`), which tells of every poster still missing: in place of the one the posters made
        during the run left."""
        said = [text for kind, text in notes if kind == "warning" and text.startswith(POSTERS_NOT_WRITTEN)]
        if not said:
            return
        for before in [e for e in self.errors if e.startswith(POSTERS_NOT_WRITTEN)]:
            self.errors.remove(before)
        self.errors.append(said[0])

    def _not_written(self, exc: Exception) -> str:
        """Why the final report could not be written, `exc` what building it raised."""
        moved = self.moved_said(final=True)
        if moved is not None:  # the report reads the state at its path, where it no longer is
            return f"report not written: {moved}"
        if isinstance(exc, OSError):  # a full disk, no permission: the file, and what to do
            return f"report not written: {write_problem(exc, folder=self.folder)}"
        if isinstance(exc, GridrunError):  # said whole, as the command says it (the state file damaged, named)
            return f"report not written: {exc}"
        if isinstance(exc, sqlite3.Error):  # the state store's, as it says it
            return f"report not written: {self.store.store_problem(exc)}"
        return f"report not written, {bug_said(exc)}"  # a report is a view: the paid work is done; this is a bug

    def moved_said(self, *, final: bool = False) -> str | None:
        """What to know of a project folder (or state folder) moved while the run goes on (`Store.moved`), where
        the report, which reads the state at its path, is not to be had (`final`: once the run has ended); None
        when the state is where it was."""
        moved, now = self.store.moved()
        if not moved:
            return None
        where = "" if now is None else f" (its state is now {now})"
        return (f"the state folder {self.store.path.parent} was moved, or the project folder holding it, while the "
                f"run went on{where}: {'its' if final else 'the run goes on, its'} videos written where it "
                f"started, and {MOVED_FIX}")

    async def _report_in_thread(self) -> None:
        """Rebuild the report off the event loop (it reads the store through its own connection); a report
        that takes a while is rebuilt less often, so it never takes more than 1/REPORT_SHARE of the run's time."""
        assert self.report is not None
        started = time.monotonic()
        try:
            await anyio.to_thread.run_sync(self.report, False)
        except Exception as exc:  # a report is a view; a failure to draw it must not stop paid work
            said = f"{NOT_REBUILT}: {self.moved_said() or _why(exc, self.folder)}"
            if said not in self.errors:  # said once, not at every rebuild
                self.errors.append(said)
        finally:
            self._report_cost = time.monotonic() - started
            self._last_report = self.clock()
            self._reporting = False

    async def _posters_in_thread(self, batch: list[Path]) -> None:
        """Hand new output files to `posters` in one worker-thread trip (posters keep up with downloads, so
        the final report has few left to make)."""
        assert self.posters is not None
        try:
            await anyio.to_thread.run_sync(self.posters, batch)
        except Exception as exc:  # a poster is a view, like the report
            failed = getattr(exc, "failed", None)  # posters not written (`report.PostersNotWritten`)
            if failed is None:
                self.errors.append(f"posters not made: {_why(exc, self.folder)}")
            else:  # said once for the run, counting those of every batch
                before = [e for e in self.errors if e.startswith(POSTERS_NOT_WRITTEN)]
                self._posters_failed.extend(failed)
                said = exc.said(self._posters_failed)
                if before:
                    self.errors[list(self.errors).index(before[0])] = said
                else:
                    self.errors.append(said)
        finally:
            self._outputs_at = self.clock()
            self._outputs_busy = False


# What a rebuild of the report during the run that failed adds to the run's errors, until the final report is written.
NOT_REBUILT = "report not rebuilt"
# What writes the report of a run whose project folder was moved while it went on (`LiveViews.moved_said`).
MOVED_FIX = "`gridrun run` from the folder's new place copies them into it at no cost and writes the report"


def _why(exc: Exception, folder: Path | None = None) -> str:
    """Why a view (the report, posters) was not made: the exception, or for too many open files what to do;
    `folder`, the one written in, named where the system's error names no file."""
    if too_many_open_files(exc) or FILES_RAN_OUT in str(exc):  # the state said so (`state.remedy`)
        return open_files_fix()
    if isinstance(exc, OSError) and exc.strerror:  # the file and the system's words, not Python's form of them
        return write_problem(exc, folder=folder)
    return exception_text(exc)
