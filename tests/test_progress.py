from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from runner.executor import RunStatistics, Throughput
from runner.progress import Progress, line


def test_throughput_counts_jobs_since_the_start_then_over_the_window() -> None:
    t = Throughput(window=300.0)
    assert t.per_minute(now=10.0, elapsed=10.0) is None  # nothing ended yet
    for at in (20.0, 25.0, 30.0):
        t.ended(at)
    assert t.per_minute(now=30.0, elapsed=30.0) == pytest.approx(6.0)  # 3 in the first 30 s
    for i in range(60):
        t.ended(400.0 + i)
    # at 500 s the window (200-500 s) holds the 60 recent ones, not the first three
    assert t.per_minute(now=500.0, elapsed=500.0) == pytest.approx(60 * 60 / 300.0)
    assert t.per_minute(now=2000.0, elapsed=2000.0) == 0.0  # stalled: none lately, some before


def stats(**over: object) -> RunStatistics:
    base: dict[str, object] = {
        "run_id": 1, "total": 100, "counts": {"done": 40, "running": 10, "planned": 50}, "cached": 0,
        "spent_micros": 14_000_000, "reserved_micros": 3_500_000, "budget_micros": 50_000_000, "elapsed": 125.0,
        "eta": 150.0, "per_minute": 16.0, "requests": 180, "stopping": None, "last_errors": ("job a: boom",),
    }
    return RunStatistics(**{**base, **over})  # type: ignore[arg-type]


def test_a_plain_line_has_counts_money_throughput_and_eta() -> None:
    text = line(stats())
    assert text.startswith("planned 50, running 10, done 40 | spent $14.00 + reserved $3.50 of $50.00")
    assert "16.0 jobs/min, 2:05 elapsed, eta 2:30" in text
    assert "— jobs/min" in line(stats(per_minute=None, eta=None))


def test_json_lines_carry_the_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(Console(file=io.StringIO()), json_lines=True, total=100) as p:
        p.update(stats())
        p.final(stats(per_minute=12.345, eta=None))
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["progress", "end"]
    assert events[0]["per_minute"] == 16.0 and events[0]["eta"] == 150.0
    assert events[1]["per_minute"] == 12.35 and events[1]["eta"] is None


def test_the_terminal_display_shows_throughput_and_the_last_errors() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with Progress(console, total=100) as p:
        p.update(stats(counts={"done": 38, "cancelled": 2, "running": 10, "planned": 50}))
    text = out.getvalue()
    assert "40/100" in text  # cancelled jobs have ended too
    assert "16.0 jobs/min" in text and "eta 2:30" in text and "job a: boom" in text
