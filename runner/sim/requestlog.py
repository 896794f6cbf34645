"""The native request log (`GET /v1/requests`): every create call, kept so that a client that lost a
create's answer can find the video it made by idempotency key or time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from runner.sim.errors import ApiError
from runner.sim.lifecycle import CANCELLED, Status, Video
from runner.sim.validate import limit_arg, time_arg


@dataclass(slots=True)
class LogEntry:
    """One create call: accepted (with its video), rejected (4xx) or failed upstream (5xx)."""

    id: str
    created: float
    model: str | None
    idempotency_key: str | None
    http_status: int
    video: Video | None = None
    error: tuple[str, str] | None = None

    def status(self, now: float) -> str:
        """completed | upstream_failure | rejected | cancelled, the statuses Lumenfall documents; and `pending`
        while the render is queued or in progress, which it does not say how it shows. `pending` is the
        simulator's own, kept so that clients meet a status outside the documented four: one they do not know
        must read as "may have made something", never as "nothing made"."""
        if self.video is None:
            return "upstream_failure" if self.http_status >= 500 else "rejected"
        status = self.video.status(now)
        if status is Status.COMPLETED:
            return "completed"
        if status is Status.FAILED:
            return "cancelled" if self.video.error_code() == CANCELLED else "upstream_failure"
        return "pending"


class RequestLog:
    """The entries in arrival order, with lookups by id and by idempotency key."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self._by_id: dict[str, LogEntry] = {}
        self._by_key: dict[str, list[LogEntry]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entry_id: str, created: float, body: Mapping[str, Any], http_status: int) -> LogEntry:
        model, key = body.get("model"), body.get("idempotency_key")
        entry = LogEntry(
            entry_id, created, model if isinstance(model, str) else None, key if isinstance(key, str) else None, http_status
        )
        self.entries.append(entry)
        self._by_id[entry.id] = entry
        if entry.idempotency_key is not None:
            self._by_key.setdefault(entry.idempotency_key, []).append(entry)
        return entry

    def get(self, entry_id: str) -> LogEntry:
        """:raises ApiError: 404 when there is no such entry."""
        entry = self._by_id.get(entry_id)
        if entry is None:
            raise ApiError(404, "NOT_FOUND", f"request {entry_id!r} does not exist", param="id")
        return entry

    def query(self, query: Mapping[str, str], now: float) -> tuple[list[LogEntry], bool]:
        """A page, newest first, filtered by status, created_after, created_before and idempotency_key.

        :raises ApiError: 400 for a bad filter.
        """
        n = limit_arg(query.get("limit"))
        after = time_arg("created_after", query.get("created_after"))
        before = time_arg("created_before", query.get("created_before"))
        status = query.get("status")
        key = query.get("idempotency_key")
        pool = self._by_key.get(key, []) if key is not None else self.entries
        out = [
            e
            for e in reversed(pool)
            if (after is None or e.created >= after)
            and (before is None or e.created <= before)
            and (status is None or e.status(now) == status)
        ]
        return out[:n], len(out) > n
