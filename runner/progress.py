"""Live progress for the terminal: a rich display on a TTY, plain lines otherwise, JSON lines on request."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from .entry import INTERRUPTED, end_queued, end_written, reading
from .jobs import usd_text
from .outputs import lost, mute
from .stats import RunStatistics
from .state import FINAL
from .terminal import shows, visible, written

if TYPE_CHECKING:
    from .balance import BalanceCheck

_ORDER = ("planned", "submitting", "submitted", "running", "downloading", "done",
          "failed", "rejected", "unknown", "expired", "cancelled")
# An update is shown once this share of `every` has passed since the last: the first report on or after that
# moment comes no later than `every` (the run reports every half second), where "not before `every`" could
# wait for the next report, up to half a second late each time.
_EARLY = 0.9
_STYLE = {"done": "green", "failed": "red", "rejected": "red", "unknown": "magenta", "expired": "yellow",
          "running": "cyan", "submitted": "blue", "downloading": "cyan"}


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def fmt_eta(seconds: float | None) -> str:
    """An ETA, rounded up: while jobs remain it never reads 0:00."""
    return fmt_time(None if seconds is None else math.ceil(seconds))


def fmt_eta_of(s: RunStatistics) -> str:
    """The ETA of `s`, marked "~" where it is drawn from the expected render times alone (no pace yet)."""
    return f"~{fmt_eta(s.eta)}" if s.eta_expected and s.eta is not None else fmt_eta(s.eta)


def fmt_fetched(s: RunStatistics) -> str:
    """What the videos being fetched have come to so far, said after their number: " (15.0 MB so far)"; ""
    while none is, or before a byte has come."""
    return f" ({s.downloaded_bytes / 1e6:,.1f} MB so far)" if s.downloaded_bytes else ""


def _count(s: RunStatistics, state: str, n: str) -> str:
    return f"{state} {n}{fmt_fetched(s)}" if state == "downloading" else f"{state} {n}"


# After the figures of a run a simulator billed: made-up, nothing paid (`RunStatistics.simulated`)
SIMULATED = " (simulated)"


def line(s: RunStatistics) -> str:
    """One plain line of progress."""
    # none yet: the run is starting (its state opened, its jobs not yet read into it)
    counts = ", ".join(_count(s, k, str(s.counts[k])) for k in _ORDER if s.counts.get(k)) or "starting"
    budget = "" if s.budget_micros is None else f" of {usd_text(s.budget_micros)}"
    waits = "" if s.next_check is None else f", {fmt_next_check(s.next_check)}"
    waits += "" if s.paused is None else f", {fmt_paused(s.paused, s.paused_by)}"
    extra = f" [{s.stopping}]" if s.stopping else ""
    budget += SIMULATED if s.simulated else ""
    return (f"{counts} | spent {usd_text(s.spent_micros)} + reserved {usd_text(s.reserved_micros)}{budget}"
            f" | {fmt_rate(s.per_minute)}, {fmt_time(s.elapsed)} elapsed, eta {fmt_eta_of(s)}{waits}{extra}")


def fmt_paused(seconds: float, status: int = 429) -> str:
    """A pause every request waits out because the provider asked (HTTP 429 Retry-After; `status` a 5xx: the
    service unavailable for the while its Retry-After said)."""
    if status != 429:
        return f"provider unavailable (HTTP {status}), creates paused, {fmt_time(math.ceil(seconds))} left"
    return f"paused by the provider (HTTP 429), {fmt_time(math.ceil(seconds))} left"


def fmt_next_check(seconds: float) -> str:
    """What a run waits for while every job in flight waits for its next poll: in seconds up to two minutes, then
    in two units as `jobs.span_text` says spans ("2 min 01 s", "2 h 01 min"), rounded up on the smaller only, so
    that a wait is never overstated by almost a whole minute or hour; past a day (a provider's far-off hint, a
    simulator's render of years) as that, not as the hundreds of digits of its seconds."""
    if not seconds <= 86_400:  # NaN too
        return "next check in over a day"
    if seconds <= 120:
        return f"next check in {math.ceil(seconds)} s"
    if math.ceil(seconds) < 3600:
        minutes, sec = divmod(math.ceil(seconds), 60)
        return f"next check in {minutes} min {sec:02d} s"
    hours, minutes = divmod(math.ceil(seconds / 60), 60)
    return f"next check in {hours} h {minutes:02d} min"


def fmt_answered(seconds: float) -> str:
    """How long ago the provider last answered a request of a run going on (`gridrun status`): a sign of life
    through long renders, when nothing else moves."""
    if seconds < 120:
        return f"last answer {math.floor(seconds)} s ago"
    return f"last answer {fmt_time(seconds)} ago"


def fmt_rate(per_minute: float | None) -> str:
    """Jobs per minute as the live display, its plain lines and `gridrun status` all write it: one figure."""
    if per_minute is None:
        return "— jobs/min"
    return f"{per_minute:,.1f} jobs/min" if per_minute < 100 else f"{per_minute:,.0f} jobs/min"


class _Writer:
    """Writes a display's lines on a thread of its own, in the order given, so that a reader that stops reading
    (a log shipper stalled, `| less` not scrolled: a full pipe) holds up that thread, never the run that reports
    its progress. While a write waits, progress lines given one after another are kept as the latest alone; every
    other line (the balance, a note, the end) is kept, in its place."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._waiting: deque[tuple[bool, Callable[[], None]]] = deque()
        self._writing = False
        self._thread: threading.Thread | None = None

    def put(self, write: Callable[[], None], *, progress: bool = False) -> None:
        """`write` to be called on the writer's thread; `progress`: a progress line, which a later one replaces
        while it still waits."""
        with self._ready:
            if progress and self._waiting and self._waiting[-1][0]:
                self._waiting[-1] = (True, write)
            else:
                self._waiting.append((progress, write))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gridrun-progress", daemon=True)
                self._thread.start()
            self._ready.notify_all()

    def flush(self) -> None:
        """Wait until every line given is written (a reader that never reads holds the caller here)."""
        with self._ready:
            while self._waiting or self._writing:
                self._ready.wait()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting:
                    self._writing = False
                    self._ready.notify_all()
                    self._ready.wait()
                write = self._waiting.popleft()[1]
                self._writing = True
            try:
                write()
            except Exception:  # noqa: BLE001, S110 - a view: a line it could not write is not the run's concern
                pass


class Progress:
    """Renders `RunStatistics` snapshots; throttled so that a 10,000-job run does not drown in redraws."""

    def __init__(
        self, console: Console, *, json_lines: bool = False, total: int = 0, every: float | None = None,
        background: bool = False, view: bool = False,
    ) -> None:
        """`every`: seconds between two updates shown (default: 0.2 on a terminal, else 5). A run reports its
        progress every half second (`executor.HEARTBEAT`), changed or not, so a plain or JSON line follows the
        last one 4.5 to 5 s later; never sooner, whatever the run reports in between. `background`: plain and
        JSON lines are written on a thread of their own (`_Writer`), so that a reader that stops reading holds
        up no paid work; `final`, `failed` and the end of the `with` wait for them to be written. `view`: the lines of
        a view of a run that another process makes (`status --watch`), written on the caller's thread: a reader
        that stops reading holds up only the view, which has nothing to finish, and a signal while a line waits for
        that reader ends the command at once (`entry.reading`), as interrupted, or with the watched run's exit code
        once its end is drawn (`final`): one signal, not one to stop the view and another to give up its last
        line, which that reader would not take either."""
        self.console = console
        self.json_lines = json_lines
        self.total = total
        # A terminal that cannot redraw (TERM=dumb) gets the plain lines: a live display would show nothing till the end.
        self.every = every if every is not None else 0.2 if console.is_interactive else 5.0
        self._last = -math.inf  # no line yet: the first is shown whatever the clock says
        self._noted = 0  # the signals' notes (`RunStatistics.notes`) the last update shown had
        self._stats: RunStatistics | None = None
        self._live: Live | None = None
        self._ended = False
        self._unread = False
        self._held_told = False  # the state held by another program said (plain lines and JSON: once)
        self._writer = _Writer() if background else None
        self._view = view
        self._code: int | None = None  # the exit code the run ended with (`final`, `failed`), once known
        self._told: set[str] = set()  # the last errors said on plain lines (`_tell`), by what they say
        self._last_said: str | None = None  # the last plain line given

    @property
    def unread(self) -> bool:
        """Whether the reader of what this draws is gone (`| head`): what is still written goes nowhere. A run goes
        on to its end; a watch has nothing left to do."""
        return self._unread or self.console.quiet

    def __enter__(self) -> Progress:
        if self.console.is_interactive and not self.json_lines:
            self._live = Live(Text("starting…"), console=self.console, refresh_per_second=5, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            if self._stats is not None:
                self._live.update(self._render(self._stats))
            self._live.__exit__(*exc)
        self.flush()

    def flush(self) -> None:
        """Wait until every line given is written (`background`). In the `gridrun` command, once the run's end is
        recorded (`final`, `failed` of a run that began), a signal ends the wait, and the command, at once
        (`entry.reading`), with the run's exit code: a reader that never reads (a hung log shipper) holds it no
        longer than the user wants. Before a run began, a signal ends the wait as any interrupt, and the `end`
        event still waits for its reader (`entry.end_interrupted`)."""
        if self._writer is None:
            return
        if self._code is None:
            self._writer.flush()
            return
        with reading(self._code):
            self._writer.flush()

    def _out(self, write: Callable[[], None], *, progress: bool = False) -> None:
        """`write` called now, or on the writer's thread (`background`); a view's, ended by a signal while it waits
        for the reader (`view`)."""
        if self._writer is not None:
            self._writer.put(write, progress=progress)
        elif self._view:
            with reading(INTERRUPTED if self._code is None else self._code):
                write()
        else:
            write()

    def _say(self, text: str, *, progress: bool = False) -> None:
        """A plain line on the console."""
        self._last_said = text
        self._out(lambda: self.console.print(text, markup=False, highlight=False), progress=progress)

    def _event(self, event: dict[str, Any], *, progress: bool = False) -> None:
        """A JSON line (`_emit`)."""
        if event.get("event") == "end" and self._writer is not None:
            end_queued()  # on its way: written (`_emit`) once the reader takes the lines before it
        self._out(lambda: self._emit(event), progress=progress)

    def update(self, s: RunStatistics) -> None:
        self._stats = s
        self._held(s)
        self._tell(s)
        if self.json_lines and not s.run_id:
            # the statistics of a run not recorded yet (the state held as it starts: the `held` event says so),
            # with no id and no jobs read: no `progress` event, whose `run` is the id a script reads
            return
        now = time.monotonic()
        # A signal's note new since the last update is shown at once, whenever the last was: the run may end right
        # after it (a SIGTERM leaves its jobs at once), and its note is no error the end lists.
        noted = len(s.notes) > self._noted
        if now - self._last < self.every * _EARLY and not noted:
            return
        self._last = now
        self._noted = len(s.notes)
        if self.json_lines:
            self._event({"event": "progress", **_as_dict(s)}, progress=True)
        elif self._live is not None:
            self._live.update(self._render(s), refresh=noted)
        else:
            self._say(line(s), progress=True)

    def _held(self, s: RunStatistics) -> None:
        """Another program holds state.db and the run waits for it, nothing else moving: said once, as soon as
        it is known, on a plain line (as `_tell` says the other last errors) and as a JSON `held` event. The
        live display shows it among its last errors."""
        if s.held is None:
            self._held_told = False  # let go: a later hold is said again
            return
        if self._held_told or self._live is not None:
            return
        self._held_told = True
        if self.json_lines:
            self._event({"event": "held", "message": s.held})
        else:
            self._bullet(s.held)

    def _tell(self, s: RunStatistics) -> None:
        """Plain lines: each of the run's last errors said on a line of its own as soon as it is among them (a
        log read in CI says why a run is stuck as it is), once: the same error met by more jobs since, or by
        another job later, is not said again while the run goes; under the run's last line the errors it ended
        with are listed again, each once (`_ended_with`); the state held by another program is said by `_held`. The
        live display shows them all, and JSON lines carry them in each event."""
        if self.json_lines or self._live is not None or len(s.said) != len(s.last_errors):
            return  # not known what they say (a watch's readings of the state): the final line's bullets say them
        for text, what in zip(s.last_errors, s.said, strict=True):
            if text != s.held and what not in self._told:
                self._told.add(what)
                self._bullet(text)

    def _bullet(self, text: str) -> None:
        """One of the run's notes (a last error, why it waits) on a plain line of its own, below the progress."""
        said = f"  • {visible(text)}"
        self._last_said = said
        self._out(lambda: self.console.print(said, markup=False, highlight=False, soft_wrap=True))

    def balance(self, found: BalanceCheck) -> None:
        """The pre-flight balance check: one JSON event; nothing on the terminal, where a refusal is said as the
        run's error and a balance that could not be read changes nothing."""
        if self.json_lines:
            self._event(found.as_event())

    def final(self, s: RunStatistics, **outputs: Any) -> None:
        """The run's end: one last JSON event (with `outputs`, such as where the report is) or plain line; a
        live display draws `s` as it closes, its last errors whole (wrapped, not cut at the terminal's width)."""
        self._stats = s
        self._ended = True
        code = outputs.get("exit_code")
        self._code = code if isinstance(code, int) else self._code
        if self.json_lines:
            self._event({"event": "end", **_as_dict(s), **outputs})
        elif self._live is None:
            if line(s) != self._last_said:  # a run that had nothing to do: its one line, not twice
                self._say(line(s))
            self._ended_with(s.last_errors)
        self.flush()

    def failed(self, *, status: str | None, exit_code: int, errors: list[str], not_listed: int = 0,
               warnings: Sequence[str] = ()) -> None:
        """The end of a run an error stopped before `final` (refused before it began: the budget, an invalid
        manifest, a lock held): one JSON `end` event with its `status` (None where no run began), `exit_code` and
        `errors`, the lines the user reads, so a script waiting for the event gets it; nothing on a terminal or as
        plain lines, where the error is printed as any command's. A run that had begun says its last errors first
        (why it waited, say), as `final` does; the JSON event carries them as `last_errors`. `not_listed`: the
        errors found beyond those `errors` lists (a manifest's first ones), as `errors_not_listed` when there are
        any."""
        if self._ended:
            return
        if self._stats is not None:  # a run began, and recorded its end before its error came here
            self._code = exit_code
        last = () if self._stats is None else tuple(dict.fromkeys(self._stats.last_errors))
        if self.json_lines:
            self._ended = True
            event: dict[str, Any] = {"event": "end", "status": status, "exit_code": exit_code, "errors": errors}
            if last:
                event["last_errors"] = list(last)
            if not_listed:
                event["errors_not_listed"] = not_listed
            if warnings:  # what may explain the errors (planning's: a value a comment cut short)
                event["warnings"] = list(warnings)
            self._event(event)
        elif self._live is None and status != "interrupted":  # Ctrl-C: the user stopped it, nothing more to say
            self._ended = True
            self._ended_with(last)
        self.flush()

    def _ended_with(self, last_errors: tuple[str, ...]) -> None:
        """Plain lines: under the run's last line, the last errors it ended with, each once, said as they came or
        not (the tail of a log, `tail -20` in CI, says why the run ended as it did); `final` and `failed` alike."""
        for e in dict.fromkeys(last_errors):
            self._bullet(e)

    def _emit(self, event: dict[str, Any]) -> None:
        """One JSON line on standard output. A reader that stopped reading (`| head`) ends the output (`unread`),
        not the run: it goes on to its end and exits with its own code. An `end` event is written once its line is,
        or its reader is gone; not where an interrupt cut its write short (`entry.end_interrupted` writes one)."""
        cut = False
        try:
            print(json.dumps(event), flush=True)
        except BrokenPipeError:
            mute(sys.stdout)
            self._unread = True
        except OSError as exc:  # `>/dev/full`: the run goes on, recorded in the state; the command says it at its end
            lost(sys.stdout, exc)
            self._unread = True
        except KeyboardInterrupt:
            cut = True
            raise
        finally:
            if event.get("event") == "end" and not cut:
                end_written()

    def _render(self, s: RunStatistics) -> Group:
        """The display, laid out for the terminal's width at this moment: no line is longer, so nothing is cut
        off mid-word or wrapped by the terminal under the live display's feet."""
        # where "…" must be written "...", two cells more: a line cut short still fits (a line the terminal
        # wraps throws the live display's redraw off by one line)
        width = max(20, self.console.width - (0 if shows(self.console.file, "…") else 2))
        settled = sum(n for state, n in s.counts.items() if state in FINAL)
        done = f" {settled:,}/{s.total:,}"
        cells = max(5, min(30, width - len(done)))
        filled = int(cells * settled / max(1, s.total))
        parts: list[Any] = [Text("█" * filled + "░" * (cells - filled) + done, no_wrap=True, overflow="ellipsis")]
        counts = [Text(_count(s, k, f"{s.counts[k]:,}"), style=_STYLE.get(k, "")) for k in _ORDER if s.counts.get(k)]
        # spent, reserved and the budget each a piece: on a narrow terminal they wrap, not lose the budget
        figures = [Text(f"spent {usd_text(s.spent_micros)}"), Text(f"reserved {usd_text(s.reserved_micros)}")]
        if s.budget_micros is not None:
            figures.append(Text(f"of {usd_text(s.budget_micros)}"))
        if s.simulated:
            figures.append(Text(SIMULATED.strip()))
        figures += [Text(fmt_rate(s.per_minute)), Text(f"elapsed {fmt_time(s.elapsed)}"),
                   Text(f"eta {fmt_eta_of(s)}")]
        if s.next_check is not None:
            figures.append(Text(fmt_next_check(s.next_check)))
        if s.paused is not None:
            figures.append(Text(fmt_paused(s.paused, s.paused_by), style="yellow"))
        if s.requests is not None:
            figures.append(Text(f"requests {s.requests:,}"))
        parts += _flow(counts, width) + _flow(figures, width)
        if s.stopping:
            parts.append(self._cut(Text(f"stopping: {self._written(s.stopping)}", style="yellow"), width))
        for e in s.last_errors:
            # a note the user acts on (why the run waits, what a signal did and what the next would do) is
            # wrapped, never cut: its way out is at its end; and once the run has ended (`final`), every error it
            # ended with, as plain lines give them: the frame is no longer redrawn, and it is all the terminal keeps
            line = Text.assemble(("•", "red"), " ", self._written(visible(e)), no_wrap=False, overflow="fold")
            whole = self._ended or e == s.held or e in s.notes
            parts.append(line if whole else self._cut(line, width))
        return Group(*parts)

    def _written(self, text: str) -> str:
        """`text` as the console's stream writes it (`terminal.written`: `\\xe9` for `\u00e9`, four cells, on an
        ASCII terminal): a line laid out on it has the width the terminal shows."""
        return written(self.console.file, text)

    @staticmethod
    def _cut(line: Text, width: int) -> Text:
        """`line` on one line of at most `width` cells, its end cut with an ellipsis."""
        line.truncate(width, overflow="ellipsis")
        line.no_wrap, line.overflow = True, "ellipsis"
        return line


def _flow(pieces: list[Text], width: int, gap: str = "  ") -> list[Text]:
    """`pieces` side by side on as few lines of at most `width` cells as hold them, none split across lines
    (one wider than a line alone is cut with an ellipsis)."""
    rows: list[Text] = []
    row = Text(no_wrap=True, overflow="ellipsis")
    for piece in pieces:
        if row.cell_len and row.cell_len + len(gap) + piece.cell_len > width:
            rows.append(row)
            row = Text(no_wrap=True, overflow="ellipsis")
        if row.cell_len:
            row.append(gap)
        row.append_text(piece)
    if row.cell_len:
        rows.append(row)
    return rows


def _as_dict(s: RunStatistics) -> dict[str, Any]:
    return {
        "run": s.run_id, "total": s.total, "counts": dict(s.counts), "cached": s.cached,
        "spent_usd": s.spent_micros / 1e6, "reserved_usd": s.reserved_micros / 1e6,
        "budget_usd": None if s.budget_micros is None else s.budget_micros / 1e6,
        "elapsed": round(s.elapsed, 3), "eta": None if s.eta is None else round(s.eta, 1),
        "eta_expected": s.eta_expected and s.eta is not None,
        "per_minute": None if s.per_minute is None else round(s.per_minute, 2),
        "requests": s.requests, "stopping": s.stopping, "last_errors": list(s.last_errors),
        "next_check": None if s.next_check is None else round(s.next_check, 1),
        "paused": None if s.paused is None else round(s.paused, 1),
        "paused_by": None if s.paused is None else s.paused_by,
        "downloaded_bytes": s.downloaded_bytes,
    }
