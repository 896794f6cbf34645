"""The Lumenfall gateway (OpenAI-shaped video API): PixVerse V5.6 and the other video models it routes."""

from __future__ import annotations

import base64
import builtins
import contextlib
import dataclasses
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, AsyncContextManager
from urllib.parse import quote

import httpx

from runner.bugs import key_env_read
from runner.errors import (
    CancelNotTakenError,
    CancelRefusedError,
    NeedsKeyError,
    OutcomeUnknownError,
    ProviderError,
    RejectedError,
    ServerError,
)
from runner.images import KINDS, ReadImage, image_mime
from runner.providers.base import (
    SIMULATOR_HEADER,
    TERMINAL,
    Balance,
    Download,
    VideoStatus,
)
from runner.providers.capabilities import API_ROOTS, ProviderCaps
from runner.providers.download import PartialDownload, fetch_to_file
from runner.providers.transport import (
    answered_at,
    decode,
    make_client,
    resolve_base_url,
    send,
    without_secret,
)

IMAGE_FIELDS = ("input_reference", "last_frame_image")
MAX_LOG_PAGES = 20
MIN_KEY_SEEN = 8
"""The shortest API key looked for in a provider's answers: a shorter one (a test's "k") is no real key, and is found
in ids and URLs by chance."""
MAX_REPORTED_USD = 1_000_000_000
"""A reported cost above this is no reading of a render's price (it is counted as unreported): in micro-USD it
would not fit the state's 64-bit integers, nor their sums."""
CLOCK_SLACK = 5.0
"""A provider's clock seen this many seconds behind ours, or less, is in step: an answer's Date is whole seconds and
is stamped before the answer travels, so one in step is seen a second or two behind."""
CLOCK_STEP = 60.0
"""How far the provider's clock is behind is counted in steps of this many seconds, so that a lookup's bound moves
only when the clock is seen a step further behind, not with every answer's travel time."""
CANCEL_NOT_TAKEN = frozenset({405, 501})
# The statuses of a refusal to cancel a video that the provider gives a code for (409 CONFLICT: "cannot be cancelled
# in its current state"): its verdict on the video, which a cancel asked again meets again. Without a code the
# answer may be anyone's (a gateway's, a proxy's): a failed request, as a 5xx is.
CANCEL_REFUSED = frozenset({400, 409, 422})
"""The answers to a cancel request of a provider, or gateway, that takes none: Method Not Allowed, Not Implemented."""

NO_LOG = frozenset({404, 405, 501})
"""The answers to the first read of the request log of a provider, or gateway, that has none: Not Found (no such
route: the log lists, it names no video), Method Not Allowed, Not Implemented."""

_STATUSES = {
    "queued": "queued",
    "in_progress": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}



def _key_slip(key: str) -> str:
    """What was pasted with an API key besides the key, said without showing the key: quotes kept around it (a
    `.env` file read by `docker --env-file` or a service manager keeps them), the `Bearer ` gridrun adds itself,
    or a space inside it (two words, a key and a comment). A provider would refuse each with a bare 401, and the
    user check a key that is right."""
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'":
        quotes = "double" if key[0] == '"' else "single"
        return f"is wrapped in {quotes} quotes, which would be sent as part of the key"
    if key[:7].lower() == "bearer ":
        return "starts with 'Bearer ', which gridrun adds itself"
    at = next((i for i, ch in enumerate(key, 1) if ch.isspace()), 0)
    if at:
        return f"holds a space at position {at} of {len(key)}, which no API key has"
    return ""


def _dotenv_note(env: str, folders: Collection[Path]) -> str:
    """What the refusal of a missing key adds where a `.env` file in one of `folders` sets `env`: gridrun reads
    only the environment (as curl and the providers' own tools do), so a key written there is not seen; how to
    export it. The file's value is never read out."""
    import re

    from runner.terminal import typed

    line = re.compile(rf"^[ \t]*(?:export[ \t]+)?{re.escape(env)}[ \t]*=", re.MULTILINE)
    for folder in dict.fromkeys(folders):
        path = folder / ".env"
        try:
            if not path.is_file() or path.stat().st_size > 1_000_000:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if line.search(text):
            # `. .env` would look the name up in PATH first: a path with a '/' is sourced as it is
            shown = typed(os.path.join(".", os.path.relpath(path)) if path.is_relative_to(Path.cwd())
                                else str(path))
            return (f"; a .env file ({shown}) sets {env}, but gridrun reads only the environment: export it "
                    f"first (set -a; . {shown}; set +a)")
    return ""


class LumenfallProvider:
    """Lumenfall's `/videos` API, under a `/v1` or an `/openai/v1` base URL."""

    simulator = False  # an answer said it came from gridrun's simulator (`SIMULATOR_HEADER`): its videos are placeholders
    sim_render_seconds: float | None = None
    """Once an answer came from gridrun's simulator, its mean render time (`render_time` × `time_scale`, as its
    `/_sim/config` says): what a render takes there, expected in place of the model's (a served simulator
    renders in a second where the provider takes a minute); None until then, or where it did not say."""
    _sim_asked = False  # the simulator's knobs were asked for (once)
    behind: float | None = None
    """How far the provider's clock was seen behind this machine's, in seconds: the most, over the API's answers, that
    the answer's HTTP `Date` was earlier than this machine's clock as it came (negative: ahead, by the least seen);
    None while no answer has given a Date. The request log's `created_after` is moved back by it (`_log_bound`)."""
    _date: tuple[str | None, float | None] = (None, None)  # the last answer's Date, and when it says

    def __init__(self, caps: ProviderCaps, *, base_url: str | None = None, name: str = "lumenfall") -> None:
        self.name = name
        self.caps = caps
        env = f"{name.upper()}_BASE_URL"
        self.base_url = resolve_base_url(base_url, env, caps.base_url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    @property
    def key_env(self) -> str:
        """The environment variable holding the API key."""
        return self.caps.api_key_env or f"{self.name.upper()}_API_KEY"

    def key_settings(self) -> str | None:
        """Where the API key is set, for advice on a key refused."""
        return self.key_env

    def base_url_settings(self) -> str | None:
        """Where the base URL is set, for advice on a wrong one."""
        return f"the manifest's `base_url:` or {self.name.upper()}_BASE_URL"

    key_folders: tuple[Path, ...] = ()
    """Folders whose `.env` file the advice on a missing key looks in, beside the working folder (the manifest's)."""

    key_shape = "lmnfl_..."
    """How a key of this provider's looks, in the advice that shows where it goes."""

    def api_key(self) -> str:
        """The API key, from the environment.

        :raises NeedsKeyError: the API key's environment variable is unset or empty.
        """
        env = self.key_env
        key_env_read(env)  # its value is kept out of what a bug's line says
        key = os.environ.get(env, "").strip()
        if not key:
            raise NeedsKeyError(
                f"{self.name} needs an API key: set {env} in the environment "
                f"(export {env}={self.key_shape}); keys are never read from the manifest"
                + _dotenv_note(env, (*self.key_folders, Path.cwd()))
            )
        for at, char in enumerate(key, 1):
            if char < " " or char == "\x7f" or not char.isascii():  # the key itself is never shown, nor that character
                what = ("a line break" if char in "\r\n" else "a control character" if char.isascii()
                        else "a non-ASCII character")
                raise NeedsKeyError(
                    f"{env} holds {what} at position {at} of {len(key)}, which an HTTP header cannot carry: set it "
                    f"to the key alone, as the provider gave it (a key pasted from a document, or read from a file "
                    f"with Windows line ends, may carry such a character)"
                )
        slip = _key_slip(key)
        if slip:
            raise NeedsKeyError(f"{env} {slip}: set it to the key alone (export {env}={self.key_shape}); nothing "
                                "was sent")
        return key

    def client(
        self,
        *,
        max_connections: int = 100,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncClient:
        """The HTTP client for one run; `transport` replaces the network (tests pass `httpx.MockTransport`).

        :raises NeedsKeyError: the API key's environment variable is unset or empty.
        """
        return make_client(
            self.base_url,
            headers={"Authorization": f"Bearer {self.api_key()}"},
            max_connections=max_connections,
            timeout=timeout,
            transport=transport,
        )

    # -- the pure part -------------------------------------------------------------------------------

    async def prepare(self, client: httpx.AsyncClient) -> None:
        """Nothing to learn before the first request: the capability data says what Lumenfall does."""

    def build_request(self, params: Mapping[str, Any], *, model: str, idempotency_key: str) -> dict[str, Any]:
        """The JSON body of `POST /videos`: model, params (local images inlined), idempotency key.

        :raises RejectedError: a local input image is missing, unreadable or not an image.
        """
        body: dict[str, Any] = {"model": model}
        for name, value in params.items():
            if value is None or name in ("model", "idempotency_key"):
                continue
            if name == "input_reference":
                body[name] = [_reference(item, name) for item in _as_list(value)]
            elif name in IMAGE_FIELDS:
                body[name] = _image_url(value, name)
            else:
                body[name] = value
        body["idempotency_key"] = idempotency_key
        return body

    # -- the I/O part --------------------------------------------------------------------------------

    async def submit(self, client: httpx.AsyncClient, body: dict[str, Any]) -> VideoStatus:
        """`POST /videos`; a lost answer is an `OutcomeUnknownError`, never a silent retry."""
        headers = {}
        key = body.get("idempotency_key")
        if isinstance(key, str) and key:
            headers["Idempotency-Key"] = key
        when: list[float | None] = []
        data = await self._call(client, "POST", "videos", create=True, json=body, headers=headers, answered=when)
        status = self._video(data, op="POST /videos", create=True)
        return dataclasses.replace(status, answered_at=when[0]) if when and when[0] is not None else status

    async def get(self, client: httpx.AsyncClient, video_id: str) -> VideoStatus:
        """`GET /videos/{id}`."""
        path = f"videos/{quote(video_id, safe='')}"
        data = await self._call(client, "GET", path)
        status = self._video(data, op=f"GET /{path}")
        if status.id != video_id:  # another video's answer (a proxy's cache, a mix-up): never taken for this one's
            raise ServerError(f"GET /{path}: the answer is about video {status.id!r}", status=200, code="MISMATCHED_ID")
        return status

    async def list(
        self,
        client: httpx.AsyncClient,
        *,
        limit: int = 100,
        after: str | None = None,
        order: str = "desc",
        only: Collection[str] | None = None,
    ) -> tuple[builtins.list[VideoStatus], str | None]:
        """`GET /videos?limit&after&order` (OpenAI shape): one page and the next cursor; with `only`,
        just the videos of those ids are parsed and returned. When `only` maps ids to the status the caller
        already has, a video still in that unfinished status comes back as its id and status alone (a poll
        round sees mostly renders still going, and needs no more of them)."""
        if not self.caps.has_list_endpoint:
            raise NotImplementedError(f"{self.name} has no endpoint listing videos")
        params: dict[str, Any] = {"limit": max(1, min(limit, 100)), "order": order}
        if after:
            params["after"] = after
        data = await self._call(client, "GET", "videos", params=params)
        items = data.get("data")
        if not isinstance(items, builtins.list):
            raise ServerError("GET /videos: the answer has no 'data' list", status=200, code="MALFORMED_RESPONSE")
        items = [item for item in items if isinstance(item, Mapping)]
        known = only if isinstance(only, Mapping) else {}
        videos: builtins.list[VideoStatus] = []
        for item in items:
            vid = item.get("id")
            if only is not None and vid not in only:
                continue
            had = known.get(vid)
            if had is not None and had not in TERMINAL:
                raw = item.get("status")
                if isinstance(raw, str) and _status(raw) == had:
                    videos.append(VideoStatus(id=vid, status=had, raw_status=raw))
                    continue
            videos.append(self._video(item, op="GET /videos"))
        cursor = None
        if data.get("has_more") and items:
            last = data.get("last_id")
            if not (isinstance(last, str) and last):
                last = items[-1].get("id")
            cursor = last if isinstance(last, str) and last else None
        return videos, cursor

    async def find_by_key(
        self, client: httpx.AsyncClient, idempotency_key: str, *, created_after: float | None = None
    ) -> VideoStatus | None:
        """The video a lost create call made, found in the native request log (`GET <root>/v1/requests`).

        Only an entry that carries the same idempotency key counts, whatever the server filtered. None only
        when the log was read to its end (or to `created_after`) and every entry with the key, if any, says
        the create made nothing (refused, or failed upstream).

        :raises NotImplementedError: there is no log (HTTP 404, 405 or 501 to its first read: `NO_LOG`), or its
            entries do not record idempotency keys, so it cannot tell.
        :raises LookupError: an entry has the key but no video id gridrun can read, and does not say the create
            made nothing; or the log could not be read to its end (longer than the pages read, or a cursor
            that cannot move), so it cannot tell.
        """
        unreadable: Mapping[str, Any] | None = None  # an entry with the key and no video: something may be made
        async with contextlib.aclosing(self._keyed_entries(client, idempotency_key, created_after)) as pages:
            async for entries in pages:
                for entry in entries:
                    video_id = _entry_video_id(entry)
                    if video_id:
                        self._refuse_keyed(video_id, op="GET /v1/requests")  # never sent in a URL's path
                        return await self.get(client, video_id)
                    if not _made_nothing(entry):
                        unreadable = unreadable or entry
        if unreadable is not None:
            raise LookupError(
                f"GET /v1/requests: entry {unreadable.get('id')!r} has the key but names no video "
                f"gridrun can read (status {unreadable.get('status')!r})"
            )
        return None

    async def videos_by_key(
        self, client: httpx.AsyncClient, idempotency_key: str, *, created_after: float | None = None
    ) -> frozenset[str]:
        """The ids of every video the request log says a create with `idempotency_key` made, the log read to its
        end (or to `created_after`): two or more, and the provider made a video per create of one key.

        :raises NotImplementedError, LookupError: as `find_by_key`, where the log cannot be read to its end.
        """
        made: set[str] = set()
        async with contextlib.aclosing(self._keyed_entries(client, idempotency_key, created_after)) as pages:
            async for entries in pages:
                made.update(v for v in map(_entry_video_id, entries) if v)
        return frozenset(made)

    async def _keyed_entries(
        self, client: httpx.AsyncClient, idempotency_key: str, created_after: float | None
    ) -> AsyncIterator[list[Mapping[str, Any]]]:
        """The request log's entries that carry `idempotency_key`, a page at a time, newest first, to the log's end.

        :raises NotImplementedError: there is no log (`NO_LOG`); or the log, read to its end, has entries and none
            records an idempotency key.
        :raises LookupError: the log could not be read to its end (longer than MAX_LOG_PAGES, or a cursor that
            cannot move).
        """
        url = f"{_api_root(client.base_url)}/v1/requests"
        params: dict[str, Any] = {"idempotency_key": idempotency_key, "limit": 100}
        if created_after is not None:
            params["created_after"] = self._log_bound(created_after, first=True)
        seen = keyed = False  # the log has entries; one of them records an idempotency key
        for page in range(MAX_LOG_PAGES):
            try:
                data = await self._call(client, "GET", url, params=params, op="GET /v1/requests")
            except ProviderError as exc:
                if page == 0 and exc.status in NO_LOG:
                    # No such route (an OpenAI-shaped API, a gateway without Lumenfall's native log): no log to
                    # find a create in, now or later.
                    raise NotImplementedError(f"{self.name} has no request log ({exc})") from exc
                raise
            widened = created_after is not None and self._widened(params, created_after)
            entries = data.get("data")
            if not isinstance(entries, builtins.list):
                raise ServerError(
                    "GET /v1/requests: the answer has no 'data' list", status=200, code="MALFORMED_RESPONSE"
                )
            entries = [e for e in entries if isinstance(e, Mapping)]
            # A page may hold only requests that carry no key (other endpoints', in a log that does not filter by
            # the key): the log records no keys only where none of its pages has one.
            seen = seen or bool(entries)
            keyed = keyed or any(_records_key(e) for e in entries)
            yield [e for e in entries if _entry_key(e) == idempotency_key]
            if not data.get("has_more"):
                if widened:
                    continue  # the same page again, further back: entries the bound left out of it may follow
                if seen and not keyed:
                    raise NotImplementedError(f"{self.name}'s request log does not record idempotency keys")
                return
            oldest = min((t for t in (_epoch(e.get("created_at")) for e in entries) if t is not None), default=None)
            if oldest is None:  # more to come, and nothing to page back from
                raise LookupError("GET /v1/requests: more entries follow, but the page gives no time to page back from")
            before = int(oldest) + 1
            if before >= params.get("created_before", before + 1):
                # A page of one second only: the cursor cannot move past it without skipping entries.
                raise LookupError(f"GET /v1/requests: more than {params['limit']} entries in one second; "
                                  "the log cannot be paged past them")
            params["created_before"] = before
        raise LookupError(f"GET /v1/requests: not found in the newest {MAX_LOG_PAGES} pages; the log goes on")

    def _widened(self, params: dict[str, Any], created_after: float) -> bool:
        """Whether the request log's `created_after` in `params` had to move back (or go) now that the answer just
        read may show the provider's clock further behind than it was set for (or never say it); moved if so. Pages
        come newest first, so the pages read so far lost nothing to the narrower bound: only the last one is read
        again, with the wider bound, before the log is taken as ended."""
        if "created_after" not in params:
            return False
        wider = self._log_bound(created_after)
        if wider is not None and wider >= params["created_after"]:
            return False
        if wider is None:
            del params["created_after"]
        else:
            params["created_after"] = wider
        return True

    def _log_bound(self, created_after: float, *, first: bool = False) -> int | None:
        """`created_after`, a time on this machine's clock, as a `created_after` of the request log, whose entries
        are stamped by the provider's clock: moved back by as far as that clock was seen behind ours (`behind`, in
        whole minutes; never forward, for one seen ahead), so that a create it logged is not read past however slow
        its clock is. A clock seen no more than CLOCK_SLACK behind is taken as in step. None, the whole log, once an
        answer has come and none gave a Date: how the provider's clock stands is unknown (a log filtered by the key
        still answers in one page; one that goes on past MAX_LOG_PAGES cannot tell, and the lookup raises
        LookupError, never a miss). `first`: before any answer, the clock is taken as in step."""
        if self.behind is None:
            return int(created_after) if first else None
        if self.behind <= CLOCK_SLACK:
            return int(created_after)
        return int(created_after - CLOCK_STEP * math.ceil(self.behind / CLOCK_STEP))

    async def balance(self, client: httpx.AsyncClient) -> Balance:
        """`GET <root>/v1/balance`, a free read of the account's balance (`parse_balance`).

        :raises ProviderError: the call failed (HTTP 404: no such endpoint at this base URL).
        :raises ValueError: the answer is not of a shape gridrun can read with certainty.
        """
        url = f"{_api_root(client.base_url)}/v1/balance"
        return parse_balance(await self._call(client, "GET", url, op="GET /v1/balance"))

    async def cancel(self, client: httpx.AsyncClient, video_id: str) -> None:
        """`DELETE /videos/{id}`: best effort, nothing is refunded. A 405 or 501 answer is a provider (or gateway)
        that takes no cancel requests; a 404 is not, as it may be said of the video as well as of the route. A
        400, 409 or 422 with the provider's code is its refusal to cancel that video (`CANCEL_REFUSED`).

        :raises CancelNotTakenError: HTTP 405 or 501.
        :raises CancelRefusedError: HTTP 400, 409 or 422 with a code.
        """
        try:
            await self._call(client, "DELETE", f"videos/{quote(video_id, safe='')}", expect_body=False)
        except ProviderError as exc:
            if exc.status in CANCEL_NOT_TAKEN:
                raise CancelNotTakenError(exc.message, status=exc.status, code=exc.code) from exc
            if exc.status in CANCEL_REFUSED and exc.code:
                raise CancelRefusedError(exc.message, status=exc.status, code=exc.code) from exc
            raise

    def forgot(self, video_id: str) -> bool:
        """Only the service can tell."""
        return False

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
        partial: PartialDownload | None = None,
    ) -> Download:
        """Stream `url` to `dest` through `dest.part`: length, type and the announced `size_bytes` checked,
        SHA-256, fsync, rename, then `on_saved(sha256_hex)` in the same worker thread; `gate` held for the HTTP
        exchange only; `before_replace(sha256_hex)` just before the rename; `partial`, what a cut try left, goes
        on from there (`download.PartialDownload`)."""
        return await fetch_to_file(client, url, Path(dest), on_saved=on_saved, gate=gate, before_replace=before_replace,
                                   size_bytes=size_bytes, partial=partial)

    # -- the boundary --------------------------------------------------------------------------------

    async def _call(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        create: bool = False,
        expect_body: bool = True,
        op: str | None = None,
        answered: builtins.list[float | None] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The call's JSON answer; `answered`, where given, gets when the server answered (`answered_at`)."""
        op = op or f"{method} /{url}"
        response = await send(client, method, url, op=op, create=create, **kwargs)
        if not self.simulator and response.headers.get(SIMULATOR_HEADER) == "1":
            self.simulator = True
            await self.simulator_knobs(client)
        date = response.headers.get("date")
        if date != self._date[0]:  # answers within a second share their Date: read once
            self._date = (date, answered_at(response))
        said = self._date[1]
        if said is not None:
            late = time.time() - said
            self.behind = late if self.behind is None else max(self.behind, late)
        if answered is not None:
            answered.append(said)
        return decode(response, op=op, create=create, expect_body=expect_body,
                      key_env=self.key_settings() or self.key_env)

    def _video(self, data: Any, *, op: str, create: bool = False) -> VideoStatus:
        """A video object parsed; a completed one without `output.url` (the OpenAI shape, which serves the
        bytes at the API itself) gets its `content_url`."""
        try:
            status = parse_video(data)
        except ValueError as exc:
            message = f"{op}: the answer is not a video object ({exc})"
            if create:
                raise OutcomeUnknownError(message + "; the job may have been created", status=200) from exc
            raise ServerError(message, status=200, code="MALFORMED_RESPONSE") from exc
        # A provider's texts, recorded and shown everywhere (state, report, exports, sidecars, status), never hold the
        # key, even when a gateway echoes the request's headers in them. The video's id and URL are what gridrun asks
        # about and fetches: redacted they would name no video, so an answer whose id or URL holds the key is refused,
        # as malformed (a create's outcome unknown, its job looked up by its key, never sent again while it cannot
        # tell); the rest is recorded with the key replaced.
        self._refuse_keyed(status.id, status.url, op=op, create=create)
        secret = os.environ.get(self.key_env, "").strip()
        if secret:
            texts = (status.error_code, status.error_message, status.raw_status, status.content_type)
            if any(secret in (t or "") for t in texts):
                status = dataclasses.replace(
                    status, raw_status=without_secret(status.raw_status, secret),
                    error_code=status.error_code and without_secret(status.error_code, secret),
                    error_message=status.error_message and without_secret(status.error_message, secret),
                    content_type=status.content_type and without_secret(status.content_type, secret))
        if status.status == "completed" and status.url is None:
            status = dataclasses.replace(status, url=self.content_url(status.id))
        return status

    def _refuse_keyed(self, video_id: str, url: str | None = None, *, op: str, create: bool = False) -> None:
        """Raise the malformed answer's error when the video id or URL an answer names holds the API key.

        :raises OutcomeUnknownError: it does, in a create's answer.
        :raises ServerError: it does, elsewhere (MALFORMED_RESPONSE).
        """
        secret = os.environ.get(self.key_env, "").strip()
        if len(secret) < MIN_KEY_SEEN:
            return
        held = [name for name, text in (("id", video_id), ("output URL", url)) if text and secret in text]
        if not held:
            return
        message = (f"{op}: the answer's video {' and '.join(held)} hold{'s' if len(held) == 1 else ''} the API key "
                   "(a gateway echoing the request's headers?): not recorded, nor used")
        if create:
            raise OutcomeUnknownError(message + "; the job may have been created", status=200)
        raise ServerError(message, status=200, code="MALFORMED_RESPONSE")

    async def simulator_knobs(self, client: httpx.AsyncClient) -> Mapping[str, Any]:
        """The knobs of the simulator at the base URL (`GET _sim/config`), asked once (later calls: {}), and its
        render time taken from them (`sim_render_seconds`); {} where it does not say (an error, another shape).
        Asked only of a server whose answers carry the simulator's header, or that is one (`SimProvider`)."""
        if self._sim_asked:
            return {}
        self._sim_asked = True
        try:
            got = await client.get("_sim/config", timeout=10.0)
            knobs = got.json() if got.status_code == 200 else {}
        except (httpx.HTTPError, ValueError, RecursionError):
            knobs = {}
        if not isinstance(knobs, Mapping):
            return {}
        self.sim_render_seconds = sim_render_seconds(knobs)
        return knobs

    def content_url(self, video_id: str) -> str:
        """`GET {base}/videos/{id}/content`: a completed video's bytes at the API's own origin (so fetched with
        the key), until the video's `expires_at`."""
        return f"{self.base_url}/videos/{quote(video_id, safe='')}/content"


def sim_render_seconds(knobs: Mapping[str, Any]) -> float | None:
    """A simulator's mean render time from its knobs (`render_time` × `time_scale`, the latter 1 where not said);
    None where they hold no such figure."""
    def figure(value: Any) -> float | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf")
        return float(value) if ok else None

    render, scale = figure(knobs.get("render_time")), figure(knobs.get("time_scale", 1.0))
    return None if render is None or scale is None else render * scale


# -- request bodies ----------------------------------------------------------------------------------


def _as_list(value: Any) -> builtins.list[Any]:
    if isinstance(value, (builtins.list, tuple)):
        return builtins.list(value)
    return [value]


def _reference(item: Any, field: str) -> dict[str, Any]:
    if isinstance(item, Mapping):
        out = dict(item)
        if "image_url" in out:
            out["image_url"] = _image_url(out["image_url"], field)
        return out
    return {"image_url": _image_url(item, field)}


def _image_url(value: Any, field: str) -> str:
    if isinstance(value, str) and value.lower().startswith(("http://", "https://", "data:")):
        return value
    if not isinstance(value, (str, os.PathLike)):
        raise RejectedError(f"{field}: expected an image path or URL, got {value!r}", code="INVALID_INPUT")
    path = Path(value)
    try:
        # bytes read once as the create is sent and found to be those the plan hashed: never read again here
        data = value.data if isinstance(value, ReadImage) else path.read_bytes()
    except OSError as exc:
        raise RejectedError(f"{field}: cannot read {path}: {exc.strerror or exc}", code="INVALID_INPUT") from exc
    mime = image_mime(path, data)
    if mime is None:
        raise RejectedError(f"{field}: {path} is not an image ({KINDS})", code="INVALID_INPUT")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# -- video objects -----------------------------------------------------------------------------------


def parse_video(data: Any) -> VideoStatus:
    """A `VideoStatus` from a Lumenfall/OpenAI video object.

    :raises ValueError: `data` is not an object with a string `id`.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an object, got {type(data).__name__}")
    video_id = data.get("id")
    if not isinstance(video_id, str) or not video_id:
        raise ValueError("no 'id'")
    raw = data.get("status")
    raw_status = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
    output = data.get("output")
    if isinstance(output, builtins.list):
        output = next((o for o in output if isinstance(o, Mapping)), None)
    if not isinstance(output, Mapping):
        output = {}
    error = data.get("error")
    error_code = error_message = None
    if isinstance(error, Mapping):
        error_code = _str(error.get("code")) or _str(error.get("type"))
        error_message = _str(error.get("message"))
    elif isinstance(error, str) and error:
        error_message = error
    metadata = data.get("metadata")
    cost = None
    if isinstance(metadata, Mapping):
        cost = _micros(metadata.get("cost"), metadata.get("cost_currency"))
    status = _status(raw_status)
    if status == "failed" and str(error_code or "").lower() in ("cancelled", "canceled"):
        status = "cancelled"  # Lumenfall has no `cancelled` status: a cancelled video fails with that code
    return VideoStatus(
        id=video_id,
        status=status,
        raw_status=raw_status,
        progress=_progress(data.get("progress")),
        url=_str(output.get("url")),
        content_type=_str(output.get("content_type")),
        size_bytes=_int(output.get("size_bytes")),
        expires_at=_epoch(data.get("expires_at")),
        error_code=error_code,
        error_message=error_message,
        cost_micros=cost,
        created_at=_epoch(data.get("created_at")),
        completed_at=_epoch(data.get("completed_at")),
    )


def _status(raw: str) -> str:
    """gridrun's status for the provider's status text."""
    return _STATUSES.get(raw.lower(), "unknown")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _progress(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return max(0, min(100, int(value)))


def _micros(cost: Any, currency: Any) -> int | None:
    if isinstance(currency, str) and currency.upper() not in ("USD", ""):
        return None
    if isinstance(cost, bool) or not isinstance(cost, (int, float, str)):
        return None
    try:
        amount = Decimal(str(cost).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > MAX_REPORTED_USD:
        return None
    return int((amount * 1_000_000).to_integral_value())


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return when.timestamp()
    if isinstance(value, (int, float)):
        seconds = float(value)
        if seconds > 1e11:
            seconds /= 1000.0
        return seconds if seconds >= 0 else None
    return None


# -- the account -------------------------------------------------------------------------------------


def parse_balance(data: Any) -> Balance:
    """A `Balance` from the answer of `GET /v1/balance`. Lumenfall does not publish its shape, so only the one
    the simulator serves is read: `{"balance": <USD left>, "currency": "USD", "unlimited": <bool>}`, where
    `unlimited` true or a null balance means no limit. A balance in another currency, or without one, could be
    misread: it is not read at all.

    :raises ValueError: anything else (no `balance`, an `unlimited` that is not a bool, not USD, not a number).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an object, got {type(data).__name__}")
    unlimited = data.get("unlimited", False)
    if not isinstance(unlimited, bool):
        raise ValueError(f"'unlimited' is {unlimited!r}, not true or false")
    if "balance" not in data:
        raise ValueError("no 'balance'")
    left = data["balance"]
    if unlimited or left is None:
        return Balance(None)
    currency = data.get("currency")
    if not (isinstance(currency, str) and currency.upper() == "USD"):
        raise ValueError(f"the currency is {currency!r}, not 'USD'")
    if isinstance(left, bool) or not isinstance(left, (int, float, str)):
        raise ValueError(f"'balance' is {left!r}, not a number")
    try:
        amount = Decimal(str(left).strip())
    except InvalidOperation:
        raise ValueError(f"'balance' is {left!r}, not a number") from None
    if not amount.is_finite() or abs(amount) > MAX_REPORTED_USD:
        raise ValueError(f"'balance' is {left!r}, no reading of an account's USD")
    return Balance(int((amount * 1_000_000).to_integral_value()))


# -- reconciliation ----------------------------------------------------------------------------------


def _api_root(base_url: httpx.URL) -> str:
    root = str(base_url).rstrip("/")
    for suffix in API_ROOTS:
        if root.endswith(suffix):
            return root[: -len(suffix)]
    return root


# Request-log statuses of a create that made no video (refused, or failed before the provider took it).
_NOTHING_MADE = frozenset({"rejected", "upstream_failure"})


def _made_nothing(entry: Mapping[str, Any]) -> bool:
    """Whether a log entry says its create made nothing. Only a status of `_NOTHING_MADE` says so: any other (one
    the protocol does not list, such as the simulator's `pending` for a render in flight, or a value of another
    type) may be a video being made."""
    status = entry.get("status")
    return isinstance(status, str) and status in _NOTHING_MADE


def _records_key(entry: Mapping[str, Any]) -> bool:
    holders = (entry, entry.get("request"), entry.get("metadata"))
    return any(isinstance(h, Mapping) and "idempotency_key" in h for h in holders)


def _entry_key(entry: Mapping[str, Any]) -> str | None:
    for holder in (entry, entry.get("request"), entry.get("metadata")):
        if isinstance(holder, Mapping):
            key = holder.get("idempotency_key")
            if isinstance(key, str):
                return key
    return None


def _entry_video_id(entry: Mapping[str, Any]) -> str | None:
    for name in ("video_id", "resource_id", "response_id", "output_id"):
        value = entry.get(name)
        if isinstance(value, str) and value:
            return value
    for name in ("video", "response"):
        value = entry.get(name)
        if isinstance(value, Mapping) and isinstance(value.get("id"), str) and value["id"]:
            return str(value["id"])
    return None
