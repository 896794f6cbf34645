"""When each video renders: first in first out over `concurrency` slots, computed, never run.

A video starts at max(its creation, the earliest time a slot frees) and holds the slot for its render time,
or until it is cancelled. Cancelling frees the slot at once, so the schedule is replayed from the start.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterable


@dataclass(slots=True)
class Slot:
    """One video's place in the schedule. `start` and `end` are filled in by `Scheduler`."""

    created: float
    render: float
    concurrency: int
    cancelled_at: float | None = None
    start: float = 0.0
    end: float = 0.0


class Scheduler:
    """Assigns start and end times to slots in creation order."""

    def __init__(self) -> None:
        self._slots: list[Slot] = []
        self._ends: list[float] = []

    def add(self, slot: Slot) -> None:
        """Schedule a newly created video after every earlier one."""
        self._slots.append(slot)
        self._place(slot)

    def cancel(self, slot: Slot, at: float) -> None:
        """Stop `slot` at `at` (a queued one never starts) and move the videos behind it forward."""
        if slot.cancelled_at is not None or at >= slot.end:
            return
        slot.cancelled_at = at
        self._ends = []
        for s in self._slots:
            self._place(s)

    def _place(self, slot: Slot) -> None:
        free = float("-inf")
        while self._ends and len(self._ends) >= slot.concurrency:
            free = heapq.heappop(self._ends)
        start = max(slot.created, free)
        cancelled = slot.cancelled_at
        if cancelled is not None and cancelled <= start:
            slot.start = slot.end = cancelled
            if free != float("-inf"):
                heapq.heappush(self._ends, free)
            return
        end = start + slot.render
        if cancelled is not None:
            end = min(end, cancelled)
        slot.start, slot.end = start, end
        heapq.heappush(self._ends, end)


def max_overlap(slots: Iterable[Slot], now: float) -> int:
    """The most slots rendering at the same moment, up to `now`."""
    events = []
    for s in slots:
        if s.end > s.start and s.start <= now:
            events.append((s.start, 1))
            events.append((s.end, -1))
    best = cur = 0
    for _, delta in sorted(events):
        cur += delta
        best = max(best, cur)
    return best
