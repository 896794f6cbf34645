"""Live progress for the terminal: a rich display on a TTY, plain lines otherwise, JSON lines on request."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .executor import RunStatistics
from .state import FINAL

_ORDER = ("planned", "submitting", "submitted", "running", "downloading", "done",
          "failed", "rejected", "unknown", "expired", "cancelled")
_STYLE = {"done": "green", "failed": "red", "rejected": "red", "unknown": "magenta", "expired": "yellow",
          "running": "cyan", "submitted": "blue", "downloading": "cyan"}


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def line(s: RunStatistics) -> str:
    """One plain line of progress."""
    counts = ", ".join(f"{k} {s.counts[k]}" for k in _ORDER if s.counts.get(k))
    budget = "" if s.budget_micros is None else f" of ${s.budget_micros / 1e6:,.2f}"
    extra = f" [{s.stopping}]" if s.stopping else ""
    return (f"{counts} | spent ${s.spent_micros / 1e6:,.2f} + reserved ${s.reserved_micros / 1e6:,.2f}{budget}"
            f" | {_fmt_rate(s.per_minute)}, {fmt_time(s.elapsed)} elapsed, eta {fmt_time(s.eta)}{extra}")


def _fmt_rate(per_minute: float | None) -> str:
    if per_minute is None:
        return "— jobs/min"
    return f"{per_minute:,.1f} jobs/min" if per_minute < 100 else f"{per_minute:,.0f} jobs/min"


class Progress:
    """Renders `RunStatistics` snapshots; throttled so that a 10,000-job run does not drown in redraws."""

    def __init__(self, console: Console, *, json_lines: bool = False, total: int = 0, every: float = 0.2) -> None:
        self.console = console
        self.json_lines = json_lines
        self.total = total
        self.every = every if console.is_terminal else 5.0
        self._last = 0.0
        self._stats: RunStatistics | None = None
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.console.is_terminal and not self.json_lines:
            self._live = Live(Text("starting…"), console=self.console, refresh_per_second=5, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            if self._stats is not None:
                self._live.update(self._render(self._stats))
            self._live.__exit__(*exc)

    def update(self, s: RunStatistics) -> None:
        self._stats = s
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        if self.json_lines:
            print(json.dumps({"event": "progress", **_as_dict(s)}), flush=True)
        elif self._live is not None:
            self._live.update(self._render(s))
        else:
            self.console.print(line(s), markup=False, highlight=False)

    def final(self, s: RunStatistics) -> None:
        if self.json_lines:
            print(json.dumps({"event": "end", **_as_dict(s)}), flush=True)
        elif self._live is None:
            self.console.print(line(s), markup=False, highlight=False)

    def _render(self, s: RunStatistics) -> Group:
        t = Table.grid(padding=(0, 2))
        for k in _ORDER:
            if s.counts.get(k):
                t.add_column(justify="right")
        t.add_row(*[Text(f"{k} {s.counts[k]}", style=_STYLE.get(k, "")) for k in _ORDER if s.counts.get(k)])
        settled = sum(n for state, n in s.counts.items() if state in FINAL)
        width = 30
        filled = int(width * settled / max(1, s.total))
        bar = Text("█" * filled + "░" * (width - filled) + f" {settled}/{s.total}")
        budget = "" if s.budget_micros is None else f" of ${s.budget_micros / 1e6:,.2f}"
        money = Text(f"spent ${s.spent_micros / 1e6:,.2f}  reserved ${s.reserved_micros / 1e6:,.2f}{budget}   "
                     f"{_fmt_rate(s.per_minute)}  elapsed {fmt_time(s.elapsed)}  eta {fmt_time(s.eta)}  "
                     f"requests {s.requests}")
        parts: list[Any] = [bar, t, money]
        if s.stopping:
            parts.append(Text(f"stopping: {s.stopping}", style="yellow"))
        for e in s.last_errors:
            parts.append(Text.from_markup(f"[red]•[/red] {escape(e)}"))
        return Group(*parts)


def _as_dict(s: RunStatistics) -> dict[str, Any]:
    return {
        "run": s.run_id, "total": s.total, "counts": dict(s.counts), "cached": s.cached,
        "spent_usd": s.spent_micros / 1e6, "reserved_usd": s.reserved_micros / 1e6,
        "budget_usd": None if s.budget_micros is None else s.budget_micros / 1e6,
        "elapsed": round(s.elapsed, 3), "eta": None if s.eta is None else round(s.eta, 1),
        "per_minute": None if s.per_minute is None else round(s.per_minute, 2),
        "requests": s.requests, "stopping": s.stopping, "last_errors": list(s.last_errors),
    }
