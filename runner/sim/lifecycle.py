"""One video's life, read off the clock: queued, in progress, then completed or failed."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from runner.sim.schedule import Slot

CANCELLED = "cancelled"
"""error.code of a video cancelled by DELETE."""


class Status(enum.Enum):
    QUEUED = "queued"  # waiting for a render slot
    IN_PROGRESS = "in_progress"  # rendering; progress rises from 0 to 99
    COMPLETED = "completed"  # output ready; URL issued
    FAILED = "failed"  # ended without output: moderation, upstream error or cancelled


@dataclass(slots=True)
class Video:
    """One accepted create. Its schedule is `slot`; everything else about its state follows from the clock."""

    id: str
    seq: int
    model: str
    prompt: str
    params: dict[str, Any]
    size: tuple[int, int]
    seconds: int
    cost_micros: int
    failure: str | None
    fingerprint: str
    key: str | None
    request_id: str
    slot: Slot
    picture_seed: int
    cancel_micros: int = 0
    """What cancelling it charged: the `cancel_charge` knob's part of its price when it was rendering, else 0."""
    size_bytes: int | None = None
    url_token: str | None = None
    url_issued: float = 0.0
    url_count: int = 0

    @property
    def created(self) -> float:
        return self.slot.created

    def status(self, now: float) -> Status:
        """The status at `now`; at the instant of its creation a video is always queued."""
        if now <= self.slot.created or now < self.slot.start:
            return Status.QUEUED
        if now < self.slot.end:
            return Status.IN_PROGRESS
        if self.slot.cancelled_at is not None or self.failure:
            return Status.FAILED
        return Status.COMPLETED

    def owed_micros(self, now: float) -> int:
        """What the account owes for it at `now`: its price, until it ends failed (then what a cancel charged)."""
        return self.cancel_micros if self.status(now) is Status.FAILED else self.cost_micros

    def error_code(self) -> str | None:
        """Why the video fails (or failed): its failure code, or `cancelled`."""
        return CANCELLED if self.slot.cancelled_at is not None else self.failure

    def progress(self, now: float) -> int:
        """0 while queued, then rising with render time to 99; 100 once completed. A cancelled video keeps the
        progress it had when cancelled (0 if it was queued)."""
        status = self.status(now)
        if status is Status.QUEUED:
            return 0
        if status is Status.COMPLETED:
            return 100
        span = self.slot.render  # the whole render: a cancel cuts the slot's end short, not the render it planned
        done = min(now, self.slot.end) - self.slot.start
        return max(0, min(99, int(100 * done / span))) if span > 0 else 0
