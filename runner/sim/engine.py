"""The simulator's state and rules, apart from HTTP: videos, idempotency, output URLs, accounting and
the views the API returns. Every status is computed from the injected clock; nothing runs in the background.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from runner.limits import os_reason
from runner.sim.config import FaultRule, SimConfig
from runner.sim.errors import ApiError
from runner.sim.faults import FaultPlan, TokenBucket
from runner.sim.lifecycle import CANCELLED, Status, Video
from runner.sim.requestlog import LogEntry, RequestLog
from runner.sim.schedule import Scheduler, Slot, max_overlap
from runner.sim.seeded import hexid, unit
from runner.sim.validate import check, fingerprint, kept, limit_arg
from runner.sim.video import Clip, ClipCache, ClipSpec, frame_size
from runner.sim.world import World, WorldError

if TYPE_CHECKING:
    from runner.providers.capabilities import ProviderCaps

_FAILURE_MESSAGES = {
    "CONTENT_POLICY_VIOLATION": "The prompt or the generated video was flagged by content moderation.",
    CANCELLED: "The video was cancelled by the client.",
}


# The fields of a video written down when it is made (its slot is written apart).
_WRITTEN = ("id", "seq", "model", "prompt", "params", "seconds", "cost_micros", "failure", "fingerprint", "key",
            "request_id", "picture_seed")


def _usd(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000


class Sim:
    """The simulated provider. Not thread-safe: call it from the event loop that serves it."""

    def __init__(self, config: SimConfig, *, clock: Callable[[], float], world: World | None = None,
                 caps: ProviderCaps | None = None) -> None:
        """:param world: where the world is written down; one with records is replayed, and a later process
            given the same file finds every video, request and cancel again.
        :param caps: the capability data simulated: its models, what they take and their prices (a run's own, with
            its manifest's capabilities files); gridrun's built-in data when None."""
        self.caps = caps
        self.clock = clock
        self.clips = ClipCache(config.cache_size)
        self.config = config
        self.world = world
        if world is not None and world.records:
            self._clear(world.records[0]["epoch"])
            try:
                self._replay(world.records)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise WorldError(f"{world.path}: a record the simulator cannot replay ({type(exc).__name__}: {exc}); "
                                 "move the file aside to begin a new simulated world") from None
            # New ids differ from every id of the world so far, even from those of records a power cut lost
            # (a client may hold them: they must stay unknown, never name another video).
            self.salt = self.clock()
        else:
            self.reset()

    # -- configuration ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every video, log entry and counter (and begin the world's file afresh); keep the config and
        the clip cache."""
        # Ids also depend on when this world began, so that a client holding ids from an earlier simulator
        # (a resumed run against a fresh in-process sim) never finds them pointing at other videos.
        self._clear(self.clock())
        if self.world is not None:
            self.world.begin(self.epoch)

    def _clear(self, epoch: float) -> None:
        self.epoch = epoch
        self.salt = epoch
        self.videos: dict[str, Video] = {}
        self.order: list[Video] = []
        self.by_key: dict[str, list[Video]] = {}
        self.by_body: dict[str, list[Video]] = {}
        self.log = RequestLog()
        self.held: list[tuple[Mapping[str, Any], str | None]] = []
        self._held_openai: list[bool] = []  # which of `held` came by the OpenAI-shaped route, in step with it
        self.tokens: dict[str, tuple[Video, float]] = {}
        self.scheduler = Scheduler()
        self.requests: Counter[str] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        # What the account owes (`committed_micros`), kept as videos come and fail instead of summed each time:
        self._owed = 0  # the cost of every video admitted
        self._failing: list[tuple[float, int, Video]] = []  # by end: the videos that end failed, not yet counted
        self._failed = 0  # the cost given back by the videos that ended failed by `_counted_at`
        self._counted_at = -math.inf
        self._configure(self.config)

    def _replay(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Rebuild the world from its written records (see `runner.sim.world`)."""
        for rec in records:
            kind = rec["t"]
            if kind == "create":
                v = dict(rec["video"])
                v["params"] = kept(v["params"])  # a world written before images were kept as stand-ins
                slot = Slot(created=v.pop("created"), render=v.pop("render"), concurrency=v.pop("concurrency"))
                self.scheduler.add(slot)
                size = tuple(v.pop("size"))
                video = Video(**v, size=size, slot=slot)
                entry = self.log.add(video.request_id, video.created, {"model": video.model, "idempotency_key": video.key}, 202)
                entry.video = video
                self._admit(video, *rec["dup"])
            elif kind == "log":
                entry = self.log.add(rec["id"], rec["at"], {"model": rec["model"], "idempotency_key": rec["key"]}, rec["status"])
                entry.error = tuple(rec["error"]) if rec.get("error") else None
                self.counts["rejected"] += rec["status"] < 500
            elif kind == "cancel" and rec["id"] in self.videos:  # (a file begun again after its deletion
                self._cancel(self.videos[rec["id"]], rec["at"], rec.get("charge", 0.0))  # may name videos it lost)

    def _write(self, record: dict[str, Any], *, required: bool = True) -> None:
        """Append `record` to the world's file, if it has one.

        :raises ApiError: 500 when it cannot be written and is `required` (a failure's log entry is not: a
            later simulator that misses it answers as if the create had never reached it, which is true).
        """
        if self.world is not None:
            try:
                self.world.append(record)
            except OSError as exc:
                if required:
                    raise ApiError(500, "INTERNAL_ERROR", f"the simulator could not write its world down: {os_reason(exc)}") from None

    def configure(self, patch: Mapping[str, Any]) -> SimConfig:
        """Apply a patch of knobs; fault rules and the rate limiter start afresh.

        :raises ConfigError: an unknown knob or a bad value.
        """
        self._configure(SimConfig.from_dict(patch, base=self.config))
        return self.config

    def _configure(self, config: SimConfig) -> None:
        self.config = config
        self.faults = FaultPlan(config.rules(), config.seed)
        burst = config.rate_burst or max(1, math.ceil(config.rate_limit))
        self.bucket = TokenBucket(config.rate_limit, burst, self.clock()) if config.rate_limit > 0 else None
        if self.clips.maxsize != config.cache_size:
            self.clips = ClipCache(config.cache_size)

    # -- creating ---------------------------------------------------------------------------------
    def create(self, body: Mapping[str, Any], *, force_failure: str | None = None, openai: bool = False) -> tuple[Video, bool]:
        """Accept a create body: a new video, or the existing one for a known `idempotency_key`. `openai`: it came
        by the OpenAI-shaped route (see `check`).

        :returns: the video and whether it is a replay.
        :raises ApiError: 400/404 as `check`, 409 for a reused key with another body (knob), 402 over balance.
        """
        now = self.clock()
        key = body.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 256):
            raise self._reject(body, ApiError(400, "INVALID_REQUEST", "idempotency_key: expected a string of 1 to 256 characters", param="idempotency_key"))
        try:
            model, checked = check(body, openai=openai, caps=self.caps)
        except ApiError as exc:
            raise self._reject(body, exc) from None
        body_print = fingerprint(model, checked)
        original = self._remembered(key, now) if key is not None and self.config.honour_idempotency else None
        if original is not None:
            if original.fingerprint != body_print and self.config.idempotency_conflict == "error":
                raise ApiError(
                    409,
                    "IDEMPOTENCY_CONFLICT",
                    f"idempotency_key: {key!r} was already used with a different request body (video {original.id})",
                    param="idempotency_key",
                )
            self.counts["replays"] += 1
            return original, True
        balance = self.config.balance_micros
        if balance is not None:
            if self.committed_micros(now) + checked.cost_micros > balance:
                raise self._reject(body, ApiError(402, "INSUFFICIENT_BALANCE", "Your balance is too low for this request; add credits."))
        dup_body = any(v.status(now) is not Status.FAILED for v in self.by_body.get(body_print, ()))
        dup_key = key is not None and any(v.status(now) is not Status.FAILED for v in self.by_key.get(key, ()))
        seq = len(self.order)
        cfg = self.config
        spread = 1.0 + cfg.jitter * (2.0 * unit(cfg.seed, "render", seq) - 1.0)
        slot = Slot(created=now, render=max(0.0, cfg.render_time * spread * cfg.time_scale), concurrency=cfg.concurrency)
        failure = force_failure or (cfg.failure_code if unit(cfg.seed, "fail", seq) < cfg.failure_rate else None)
        params = kept(checked.params)  # the images checked, their bytes are let go
        seed = params.get("seed")
        video = Video(
            id="video_" + hexid(cfg.seed, self.epoch, self.salt, "video", seq),
            seq=seq,
            model=model.model,
            prompt=str(params.get("prompt", "")),
            params=params,
            size=checked.size,
            seconds=int(params.get("duration", 5)),
            cost_micros=checked.cost_micros,
            failure=failure,
            fingerprint=body_print,
            key=key,
            request_id=self._next_request_id(),
            slot=slot,
            picture_seed=int(seed) if seed is not None else int(unit(cfg.seed, "picture", seq) * 2**31),
        )
        written = {f: getattr(video, f) for f in _WRITTEN}
        # Written down before anything changes here: a create that cannot be kept is a 500 that made nothing.
        self._write({"t": "create", "dup": [dup_body, dup_key], "video": {
            **written, "size": list(video.size), "created": now, "render": slot.render, "concurrency": slot.concurrency}})
        self.scheduler.add(slot)
        entry = self._log_entry(body, 202)
        entry.video = video
        self._admit(video, dup_body, dup_key)
        return video, False

    def hold(self, body: Mapping[str, Any], *, failure: FaultRule | None = None, openai: bool = False) -> None:
        """A create a gateway holds (the `held` fault): it reaches the provider at `release_held`. `failure`, a
        `job_failure` rule that fired on it; `openai`, as `create`."""
        self.held.append((body, (failure.code or self.config.failure_code) if failure else None))
        self._held_openai.append(openai)

    def release_held(self) -> int:
        """The held creates reach the provider, in the order they came, each made (and paid for) or refused as
        if just sent: the number released."""
        held, self.held = self.held, []
        routes, self._held_openai = self._held_openai, []
        for (body, failure), openai in zip(held, routes, strict=True):
            try:
                self.create(body, force_failure=failure, openai=openai)
            except ApiError:
                pass  # refused, as the request log records; no one waits for the answer
        return len(held)

    def _remembered(self, key: str, now: float) -> Video | None:
        """The video a create with `key` is answered with: the first one made with it; with an
        `idempotency_window`, the last one made with it, while it is younger than the window (None after)."""
        made = self.by_key.get(key)
        if not made:
            return None
        window = self.config.idempotency_window
        if window is None:
            return made[0]
        return made[-1] if now - made[-1].created < window else None

    def _admit(self, video: Video, dup_body: bool, dup_key: bool) -> None:
        self.counts["creates"] += 1
        self.counts["duplicate_paid"] += dup_body or dup_key
        self.counts["duplicate_bodies"] += dup_body
        self.counts["duplicate_keys"] += dup_key
        self.videos[video.id] = video
        self.order.append(video)
        self._owed += video.cost_micros
        if video.failure:
            heapq.heappush(self._failing, (video.slot.end, video.seq, video))
        self.by_body.setdefault(video.fingerprint, []).append(video)
        if video.key is not None:
            self.by_key.setdefault(video.key, []).append(video)

    def committed_micros(self, now: float) -> int:
        """What the account owes for videos completed or still rendering, and what cancels charged."""
        if now < self._counted_at:  # the clock went back: a video counted failed may not have failed yet
            return sum(v.owed_micros(now) for v in self.order)
        held = []
        while self._failing and self._failing[0][0] <= now:
            item = heapq.heappop(self._failing)
            if item[2].status(now) is Status.FAILED:
                self._failed += item[2].cost_micros - item[2].cancel_micros
            else:  # made at this very instant: queued until the clock moves on
                held.append(item)
        for item in held:
            heapq.heappush(self._failing, item)
        self._counted_at = now
        return self._owed - self._failed

    def _reject(self, body: Mapping[str, Any], exc: ApiError) -> ApiError:
        self._log_failure(body, exc.status, exc.code, exc.message)
        self.counts["rejected"] += 1
        return exc

    def record_upstream_failure(self, body: Mapping[str, Any], status: int, code: str, message: str) -> None:
        """Log a create that failed with a 5xx before any video was made."""
        self._log_failure(body, status, code, message)

    def _log_failure(self, body: Mapping[str, Any], status: int, code: str, message: str) -> None:
        entry = self._log_entry(body, status)
        entry.error = (code, message)
        self._write({"t": "log", "id": entry.id, "at": entry.created, "model": entry.model,
                     "key": entry.idempotency_key, "status": status, "error": [code, message]}, required=False)

    def _next_request_id(self) -> str:
        return "req_" + hexid(self.config.seed, self.epoch, self.salt, "request", len(self.log))

    def _log_entry(self, body: Mapping[str, Any], status: int) -> LogEntry:
        return self.log.add(self._next_request_id(), self.clock(), body, status)

    # -- reading ----------------------------------------------------------------------------------
    def get(self, video_id: str) -> Video:
        """:raises ApiError: 404 when there is no such video."""
        video = self.videos.get(video_id)
        if video is None:
            raise ApiError(404, "NOT_FOUND", f"video {video_id!r} does not exist", param="id")
        return video

    def cancel(self, video_id: str) -> Video:
        """Cancel a queued or rendering video (best effort: a finished one is left as it is).

        :raises ApiError: 404 when there is no such video.
        """
        video = self.get(video_id)
        now = self.clock()
        charge = self.config.cancel_charge
        if video.slot.cancelled_at is None and now < video.slot.end:
            self._write({"t": "cancel", "id": video.id, "at": now, "charge": charge})
        self._cancel(video, now, charge)
        return video

    def _cancel(self, video: Video, at: float, charge: float) -> None:
        """Cancel `video` at `at`, charging `charge` of its price if it was rendering then."""
        if video.slot.cancelled_at is not None or at >= video.slot.end:
            return  # finished, or cancelled already: nothing changes
        self.scheduler.cancel(video.slot, at)
        if video.slot.start < video.slot.end:  # it rendered until `at` (a queued one ends where it starts)
            video.cancel_micros = round(video.cost_micros * charge)
        # The video now ends failed, and the videos behind it end earlier: count the failures again.
        self._failing = [(v.slot.end, v.seq, v) for v in self.order if v.failure or v.slot.cancelled_at is not None]
        heapq.heapify(self._failing)
        self._failed, self._counted_at = 0, -math.inf

    def list_videos(self, *, limit: str | None, after: str | None, order: str | None) -> tuple[list[Video], bool]:
        """A page of videos, newest first unless order=asc.

        :raises ApiError: 400 for a bad limit, order or cursor.
        """
        n = limit_arg(limit)
        order = order or "desc"
        if order not in ("asc", "desc"):
            raise ApiError(400, "INVALID_REQUEST", f"order: must be asc or desc, got {order!r}", param="order")
        cursor = None
        if after:
            cursor = self.videos.get(after)
            if cursor is None:
                raise ApiError(400, "INVALID_REQUEST", f"after: no video {after!r}", param="after")
        if order == "asc":
            start = cursor.seq + 1 if cursor else 0
            return self.order[start : start + n], start + n < len(self.order)
        end = cursor.seq if cursor else len(self.order)
        start = max(0, end - n)
        return self.order[start:end][::-1], start > 0

    def list_requests(self, query: Mapping[str, str]) -> tuple[list[LogEntry], bool]:
        """A page of the request log, newest first; see `RequestLog.query`.

        :raises ApiError: 400 for a bad filter.
        """
        return self.log.query(query, self.clock())

    # -- outputs ----------------------------------------------------------------------------------
    def clip_spec(self, video: Video) -> ClipSpec:
        cfg = self.config
        w, h = frame_size(video.size, full_size=cfg.full_size, max_side=cfg.max_side)
        style = video.params.get("style")
        if cfg.clip_variants:
            digest = hashlib.sha256(f"{video.prompt}|{video.picture_seed}".encode()).digest()
            variant = int.from_bytes(digest[:4], "big") % cfg.clip_variants
            return ClipSpec(f"variant {variant}", variant, str(style) if style else None, video.seconds, w, h, cfg.fps,
                            cfg.clip_bytes)
        return ClipSpec(video.prompt, video.picture_seed, str(style) if style else None, video.seconds, w, h, cfg.fps,
                        cfg.clip_bytes)

    def clip(self, video: Video) -> Clip:
        """The video's clip, encoding it on a cache miss. Blocking: call it from a worker thread."""
        clip = self.clips.get(self.clip_spec(video))
        video.size_bytes = len(clip.mp4)
        return clip

    def url(self, video: Video, now: float) -> tuple[str, float]:
        """The current output URL token of a completed video and when it expires; issues or refreshes it."""
        ttl = self.config.url_ttl
        if video.url_token is None or (self.config.refresh_urls and now >= video.url_issued + ttl):
            issued = video.slot.end if video.url_token is None else now
            video.url_count += 1
            video.url_token = hexid(self.config.seed, "token", video.id, video.url_count, n=32)
            video.url_issued = issued
            self.tokens[video.url_token] = (video, issued)
        return video.url_token, video.url_issued + ttl

    def content(self, video_id: str) -> Video:
        """The completed video `GET /videos/{id}/content` serves, until its `expires_at` (as its output URL:
        a GET of the video, where URLs are refreshed, makes that later).

        :raises ApiError: 404 for no such video or one not completed, the `expired_status` knob once expired.
        """
        video = self.get(video_id)
        now = self.clock()
        if not self.completed([video]):
            raise ApiError(404, "NOT_FOUND", f"video {video.id} has no content: it is {video.status(now).value}")
        issued = video.url_issued if video.url_token is not None else video.slot.end
        if now >= issued + self.config.url_ttl:
            raise ApiError(self.config.expired_status, "CONTENT_EXPIRED", f"video {video.id}'s content has expired")
        return video

    def file(self, video_id: str, token: str | None) -> Video:
        """The video an output URL points to.

        :raises ApiError: 403 for a wrong token, the `expired_status` knob for an expired one, 404 for no video.
        """
        found = self.tokens.get(token or "")
        if found is None or found[0].id != video_id:
            if video_id not in self.videos:
                raise ApiError(404, "NOT_FOUND", "no such file")
            raise ApiError(403, "FORBIDDEN", "the URL signature is not valid")
        video, issued = found
        if self.clock() >= issued + self.config.url_ttl:
            raise ApiError(self.config.expired_status, "URL_EXPIRED", "the URL has expired; GET the video again for a fresh one")
        return video

    # -- views ------------------------------------------------------------------------------------
    def video_json(self, video: Video, base_url: str, *, now: float | None = None, status: str | None = None) -> dict[str, Any]:
        """The Lumenfall video object at `now` (default: the clock). `base_url` is the root that output URLs
        are made absolute against; `status` overrides the status value (fault injection)."""
        now = self.clock() if now is None else now
        state = video.status(now)
        w, h = video.size
        finished = state in (Status.COMPLETED, Status.FAILED)
        out: dict[str, Any] = {
            "id": video.id,
            "object": "video",
            "created_at": int(video.created),
            "completed_at": int(video.slot.end) if finished else None,
            "expires_at": None,
            "status": status or state.value,
            "model": video.model,
            "prompt": video.prompt,
            "seconds": str(video.seconds),
            "size": f"{w}x{h}",
            "progress": video.progress(now),
        }
        cost: int | None = None
        if state is Status.COMPLETED:
            token, expires = self.url(video, now)
            out["expires_at"] = int(expires)
            if not self.config.omit_output:
                out["output"] = {
                    "url": f"{base_url}files/{video.id}.mp4?token={token}",
                    "thumbnail_url": f"{base_url}files/{video.id}.jpg?token={token}",
                    "content_type": "video/mp4",
                    "size_bytes": video.size_bytes,
                }
            cost = self.reported_micros(video)
        elif state is Status.FAILED:
            code = video.error_code() or "UPSTREAM_ERROR"
            out["error"] = {"code": code, "message": _FAILURE_MESSAGES.get(code, "The upstream provider failed to render the video.")}
            cost = self.reported_charge_micros(video)
        out["metadata"] = {
            "provider": "pixverse",
            "provider_name": "PixVerse",
            "executed_model": video.model,
            "cost_estimate": _usd(video.cost_micros),
            "cost": _usd(cost),
            "cost_currency": "USD",
            "upstream_id": "pv_" + hexid(self.config.seed, "upstream", video.id, n=16),
            "request_id": video.request_id,
        }
        return out

    def reported_micros(self, video: Video) -> int:
        """The cost reported for a completed render: its price, times the `cost_factor` knob."""
        return round(video.cost_micros * self.config.cost_factor)

    def reported_charge_micros(self, video: Video) -> int:
        """The cost reported for a render that ended failed: what cancelling it charged (0 for a failure, or
        for a cancel while queued or with no `cancel_charge`), times the `cost_factor` knob."""
        return round(video.cancel_micros * self.config.cost_factor)

    def request_json(self, entry: LogEntry) -> dict[str, Any]:
        now = self.clock()
        video = entry.video
        status = entry.status(now)
        cost = self.reported_micros(video) if video is not None and status in ("completed", "pending") else None
        if video is not None and status == "cancelled" and video.cancel_micros:
            cost = self.reported_charge_micros(video)
        return {
            "id": entry.id,
            "object": "request",
            "created_at": int(entry.created),
            "status": status,
            "method": "POST",
            "endpoint": "/v1/videos",
            "model": entry.model,
            "idempotency_key": entry.idempotency_key,
            "video_id": video.id if video is not None else None,
            "http_status": entry.http_status,
            "cost": _usd(cost),
            "cost_currency": "USD",
            "error": {"code": entry.error[0], "message": entry.error[1]} if entry.error else None,
        }

    def stats(self) -> dict[str, Any]:
        """Counters for tests and benches: requests per route, creates, replays, duplicate paid creates,
        completions, downloads (and the bytes of their bodies sent, `download_bytes`, cut ones too), faults per kind, the most videos rendering at once."""
        now = self.clock()
        states = Counter(v.status(now) for v in self.order)
        cache = self.clips.statistics()
        return {
            "requests": dict(self.requests),
            "creates": self.counts["creates"],
            "replays": self.counts["replays"],
            "duplicate_paid": self.counts["duplicate_paid"],
            "duplicate_bodies": self.counts["duplicate_bodies"],
            "duplicate_keys": self.counts["duplicate_keys"],
            "rejected": self.counts["rejected"],
            "completions": states[Status.COMPLETED],
            "failures": sum(1 for v in self.order if v.status(now) is Status.FAILED and v.error_code() != CANCELLED),
            "cancelled": sum(1 for v in self.order if v.slot.cancelled_at is not None),
            "queued": states[Status.QUEUED],
            "in_progress": states[Status.IN_PROGRESS],
            "max_in_progress": max_overlap((v.slot for v in self.order), now),
            "downloads": self.counts["downloads"],
            "download_bytes": self.counts["download_bytes"],
            "throttled": self.counts["throttled"],
            "faults": dict(self.fault_counts),
            "billed_micros": sum(v.owed_micros(now) for v in self.order  # completed, and what cancels charged
                                 if v.status(now) in (Status.COMPLETED, Status.FAILED)),
            "encodes": cache.misses,
            "cache_hits": cache.hits,
            "encode_seconds": round(cache.encode_seconds, 4),
            "now": now,
        }

    def completed(self, videos: Iterable[Video], now: float | None = None) -> list[Video]:
        """The videos among `videos` that are completed at `now` (default: the clock)."""
        now = self.clock() if now is None else now
        return [v for v in videos if v.status(now) is Status.COMPLETED]
