"""The provider interface: what the executor calls, and the snapshots it gets back.

A provider is split in two. The pure part (`caps`, `build_request`) takes values and returns values.
The I/O part (`submit`, `get`, `list`, `find_by_key`, `videos_by_key`, `download`, `cancel`) is given the one shared
`httpx.AsyncClient` that `client()` made, and raises only `runner.errors.ProviderError` subclasses:

    RateLimitedError, ServerError, TransportError   retry the same call (after `retry_after` if set)
    ConnectError                                    retry; the request provably never left this machine
    OutcomeUnknownError                             `submit` only: the create call may have been received
    RejectedError                                   the provider refused; nothing was paid
    ExpiredError, DownloadError                     `download` only
    NeedsKeyError                                   `client()` only

A provider with an account balance endpoint (Lumenfall, the simulator) also has `balance(client) -> Balance`,
which a run asks once before its first create (`runner.balance`); one without it is never asked.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncContextManager, Callable, Collection, Mapping, Protocol, runtime_checkable

import httpx

from runner.providers.capabilities import ProviderCaps

STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "unknown")
"""Every value of `VideoStatus.status`; "unknown" means the provider sent a value not in this list."""

TERMINAL = frozenset({"completed", "failed", "cancelled"})
"""Statuses a job never leaves."""

SIMULATOR_HEADER = "X-Gridrun-Simulator"
"""The response header gridrun's simulator (`runner.sim`) sends on every answer, "1": what tells a run its videos
are a simulator's placeholders, cached only for runs against that same endpoint."""


@dataclass(frozen=True, slots=True)
class VideoStatus:
    """A snapshot of one provider job, as the provider last described it."""

    id: str
    status: str
    raw_status: str
    progress: int | None = None
    url: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    expires_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    cost_micros: int | None = None
    created_at: float | None = None
    completed_at: float | None = None
    answered_at: float | None = None
    """On a create's answer only: when the provider answered, by its own clock (the HTTP `Date` header, whole
    seconds), to set against `created_at`; None where the answer had no such header."""

    @property
    def failure(self) -> str:
        """Why a failed job failed, as gridrun records it: "CODE: message"."""
        return f"{self.error_code or 'failed'}: {self.error_message or 'the provider gave no reason'}"

    @property
    def terminal(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class Balance:
    """The account's balance, as the provider said it: what is left in micro-USD (below 0 when overdrawn), or
    None for an account without a limit."""

    micros: int | None


@dataclass(frozen=True, slots=True)
class Download:
    """A finished download: the file at `path` is complete, fsynced and renamed into place. `sidecar_error`,
    why its JSON sidecar could not be written beside it (a full disk, too many open files), None when it was:
    the video is saved all the same, and the sidecar (a copy of what the state records) is written by a later
    run. `size_announced`: the provider's size of the video, when the file saved has another."""

    path: Path
    sha256: str
    size_bytes: int
    content_type: str
    sidecar_error: str | None = None
    # the size the provider announced for the video, where the whole, well-formed file saved has another: kept all
    # the same (a paid render is never thrown away for a figure), and said
    size_announced: int | None = None


@runtime_checkable
class Provider(Protocol):
    """One video-generation service behind one small interface."""

    name: str
    caps: ProviderCaps

    def client(self, *, max_connections: int = 100, timeout: float = 30.0) -> httpx.AsyncClient:
        """The HTTP client for one run, base URL and auth set.

        :raises NeedsKeyError: the provider's API key is not set; nothing has been sent.
        """
        ...

    async def prepare(self, client: httpx.AsyncClient) -> None:
        """Learn, before the run's first request, what the capability data cannot say of this provider."""
        ...

    def build_request(self, params: Mapping[str, Any], *, model: str, idempotency_key: str) -> dict[str, Any]:
        """The JSON body of the create call for already-checked `params`. A local input image the run has read
        and found as planned comes as an `images.ReadImage`: its path, and the bytes to send (`data`), which are
        not read again.

        :raises RejectedError: a local input file is missing or not an image.
        """
        ...

    async def submit(self, client: httpx.AsyncClient, body: dict[str, Any]) -> VideoStatus:
        """Create the job.

        :raises OutcomeUnknownError: the request may have reached the provider, the answer was lost.
        """
        ...

    async def get(self, client: httpx.AsyncClient, video_id: str) -> VideoStatus:
        """The job's current state."""
        ...

    async def list(
        self,
        client: httpx.AsyncClient,
        *,
        limit: int = 100,
        after: str | None = None,
        order: str = "desc",
        only: Collection[str] | None = None,
    ) -> tuple[builtins.list[VideoStatus], str | None]:
        """One page of jobs after the cursor `after`, newest first (`order="asc"`: oldest first), and the
        cursor of the next page (None on the last); with `only`, just the jobs of those ids. `only` may map
        each id to the status the caller already has: a job still in that unfinished status may then come
        back with its id and status alone.

        :raises NotImplementedError: the provider has no list endpoint (`caps.has_list_endpoint`).
        """
        ...

    async def find_by_key(
        self, client: httpx.AsyncClient, idempotency_key: str, *, created_after: float | None = None
    ) -> VideoStatus | None:
        """The job a create call with `idempotency_key` made, or None when the provider knows of none.

        :raises NotImplementedError, LookupError: the provider cannot tell (its log records no keys; the log
            could not be read to its end).
        """
        ...

    async def videos_by_key(
        self, client: httpx.AsyncClient, idempotency_key: str, *, created_after: float | None = None
    ) -> frozenset[str]:
        """The ids of every video the provider says creates with `idempotency_key` made (two or more: it made one
        per create of the key).

        :raises NotImplementedError, LookupError: the provider cannot tell.
        """
        ...

    async def download(
        self,
        client: httpx.AsyncClient,
        url: str,
        dest: Path,
        *,
        on_saved: Callable[[str], None] | None = None,
        gate: AsyncContextManager[Any] | None = None,
        before_replace: Callable[[str], None] | None = None,
        size_bytes: int | None = None,
        partial: Any = None,
    ) -> Download:
        """Stream `url` to `dest`, all or nothing; then `on_saved(sha256_hex)`, in the worker thread that
        made the file durable (a sidecar written in the same trip). `gate`, a request slot, is held while
        the HTTP exchange lasts, not during the disk work. `before_replace(sha256_hex)`, in that thread once the
        new file is durable and just before it replaces `dest` (which it leaves as it was should that raise).
        `size_bytes`, the video's size as the provider announced it: a body of another size is refused.
        `partial` (a `download.PartialDownload`, one per job's tries in a run): a try cut short leaves its bytes
        there, and the next goes on from them; the caller discards it once it tries no more.

        :raises ExpiredError: the URL is gone.
        :raises DownloadError: truncated, empty, not a video, or not of the announced size; no partial file is left
            behind but the one `partial` holds.
        """
        ...

    async def cancel(self, client: httpx.AsyncClient, video_id: str) -> None:
        """Ask the provider to stop the job; best effort, nothing is refunded.

        :raises CancelNotTakenError: the provider does not take cancel requests (no such method on the route).
        :raises ProviderError: the request failed otherwise.
        """
        ...

    def forgot(self, video_id: str) -> bool:
        """True when the provider is known, without asking it, to have lost `video_id` for good (the
        in-process simulator of an earlier process); False when only the provider can tell."""
        ...
