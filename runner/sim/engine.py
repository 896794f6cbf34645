"""The simulator's state and rules, apart from HTTP: videos, their lifecycle, idempotency, the request log,
output URLs and accounting. Every status is computed from the injected clock; nothing runs in the background.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from runner.providers import capabilities
from runner.sim.config import SimConfig
from runner.sim.faults import FaultPlan, TokenBucket, unit
from runner.sim.schedule import Scheduler, Slot, max_overlap
from runner.sim.video import Clip, ClipCache, ClipSpec, frame_size

PROVIDER = "sim"
CANCELLED = "cancelled"
_FAILURE_MESSAGES = {
    "CONTENT_POLICY_VIOLATION": "The prompt or the generated video was flagged by content moderation.",
    CANCELLED: "The video was cancelled by the client.",
}


class Status(enum.Enum):
    QUEUED = "queued"  # waiting for a render slot
    IN_PROGRESS = "in_progress"  # rendering; progress rises from 0 to 99
    COMPLETED = "completed"  # output ready; URL issued
    FAILED = "failed"  # ended without output: moderation, upstream error or cancelled


class ApiError(Exception):
    """An error answer of the API: HTTP status, Lumenfall error code, message naming the field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


@dataclass(slots=True)
class Video:
    """One accepted create."""

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

    def error_code(self) -> str | None:
        return CANCELLED if self.slot.cancelled_at is not None else self.failure

    def progress(self, now: float) -> int:
        status = self.status(now)
        if status is Status.QUEUED:
            return 0
        if status is Status.COMPLETED:
            return 100
        span = self.slot.end - self.slot.start
        done = min(now, self.slot.end) - self.slot.start
        return max(0, min(99, int(100 * done / span))) if span > 0 else 0


@dataclass(slots=True)
class LogEntry:
    """One create request in the native request log."""

    id: str
    created: float
    model: str | None
    idempotency_key: str | None
    http_status: int
    video: Video | None = None
    error: tuple[str, str] | None = None

    def status(self, now: float) -> str:
        if self.video is None:
            return "upstream_failure" if self.http_status >= 500 else "rejected"
        status = self.video.status(now)
        if status is Status.COMPLETED:
            return "completed"
        if status is Status.FAILED:
            return "cancelled" if self.video.error_code() == CANCELLED else "upstream_failure"
        return "pending"


def _hex(seed: int, *parts: object, n: int = 24) -> str:
    return hashlib.blake2b("\x1f".join(map(str, (seed, *parts))).encode(), digest_size=16).hexdigest()[:n]


def _usd(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000


def _time_arg(name: str, value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise ApiError(400, "INVALID_REQUEST", f"{name}: expected unix seconds or ISO 8601, got {value!r}", param=name) from exc


def _limit_arg(value: str | None, default: int = 20) -> int:
    if value is None:
        return default
    try:
        limit = int(value)
    except ValueError as exc:
        raise ApiError(400, "INVALID_REQUEST", f"limit: expected an integer, got {value!r}", param="limit") from exc
    if not 0 <= limit <= 100:
        raise ApiError(400, "INVALID_REQUEST", f"limit: must be between 0 and 100, got {limit}", param="limit")
    return limit


def normalise_references(value: Any) -> Any:
    """`input_reference` as capability data types it: a string or a list of strings."""
    if isinstance(value, dict):
        if "image_url" in value:
            return value["image_url"]
        if "file_id" in value:
            return f"file:{value['file_id']}"
        return value
    if isinstance(value, list):
        return [normalise_references(v) for v in value]
    return value


class Sim:
    """The simulated provider. Not thread-safe: call it from the event loop that serves it."""

    def __init__(self, config: SimConfig, *, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.clips = ClipCache(config.cache_size)
        self.config = config
        self.reset()

    # -- configuration ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every video, log entry and counter; keep the config and the clip cache."""
        self.videos: dict[str, Video] = {}
        self.order: list[Video] = []
        self.by_key: dict[str, list[Video]] = {}
        self.by_body: dict[str, list[Video]] = {}
        self.log: list[LogEntry] = []
        self.log_index: dict[str, LogEntry] = {}
        self.tokens: dict[str, tuple[Video, float]] = {}
        self.scheduler = Scheduler()
        self.requests: Counter[str] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self._configure(self.config)

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
    def check(self, body: Mapping[str, Any]) -> tuple[capabilities.ModelCaps, capabilities.Checked, dict[str, str]]:
        """Validate a create body like the real API; returns the model, the checked params and the field names
        the caller used (`seconds` for `duration`).

        :raises ApiError: 400 INVALID_REQUEST naming the field, or 404 MODEL_NOT_FOUND.
        """
        model_name = body.get("model")
        if model_name is None:
            raise ApiError(400, "INVALID_REQUEST", "model: is required", param="model")
        if not isinstance(model_name, str):
            raise ApiError(400, "INVALID_REQUEST", f"model: expected a string, got {model_name!r}", param="model")
        caps = capabilities.load(PROVIDER)
        model = caps.model(model_name) if caps else None
        if model is None:
            known = ", ".join(sorted(caps.models)) if caps else ""
            raise ApiError(404, "MODEL_NOT_FOUND", f"model: {model_name!r} does not exist (available: {known})", param="model")
        params = {k: v for k, v in body.items() if k not in ("model", "idempotency_key")}
        names = {}
        if "seconds" in params:
            seconds = params.pop("seconds")
            if "duration" in params and str(params["duration"]) != str(seconds):
                raise ApiError(
                    400, "INVALID_REQUEST", f"seconds: {seconds!r} contradicts duration {params['duration']!r}", param="seconds"
                )
            params.setdefault("duration", seconds)
            names["duration"] = "seconds"
        if "input_reference" in params:
            params["input_reference"] = normalise_references(params["input_reference"])
        checked = model.check(params)
        if checked.issues:
            first = checked.issues[0]
            message = "; ".join(f"{names.get(i.field, i.field)}: {i.message}" for i in checked.issues)
            raise ApiError(400, "INVALID_REQUEST", message, param=names.get(first.field, first.field))
        return model, checked, names

    def dry_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The price of a create without creating anything.

        :raises ApiError: as `check`.
        """
        model, checked, _ = self.check(body)
        n = int(checked.params.get("n", 1))
        w, h = checked.size
        return {
            "estimated": True,
            "total_cost_micros": checked.cost_micros,
            "currency": model.prices.get("currency", "USD"),
            "components": [
                {
                    "type": "video",
                    "model": model.model,
                    "quantity": n,
                    "seconds": int(checked.params.get("duration", 5)),
                    "size": f"{w}x{h}",
                    "unit_cost_micros": checked.cost_micros // max(1, n),
                    "cost_micros": checked.cost_micros,
                }
            ],
        }

    def create(self, body: Mapping[str, Any], *, force_failure: str | None = None) -> tuple[Video, bool]:
        """Accept a create body: a new video, or the existing one for a known `idempotency_key`.

        :returns: the video and whether it is a replay.
        :raises ApiError: 400/404 as `check`, 409 for a reused key with another body (knob), 402 over balance.
        """
        now = self.clock()
        key = body.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 256):
            raise self._reject(body, ApiError(400, "INVALID_REQUEST", "idempotency_key: expected a string of 1 to 256 characters", param="idempotency_key"))
        try:
            model, checked, _ = self.check(body)
        except ApiError as exc:
            raise self._reject(body, exc) from None
        fingerprint = hashlib.sha256(
            json.dumps({"model": model.model, "params": checked.params}, sort_keys=True, default=str).encode()
        ).hexdigest()
        if key is not None and self.config.honour_idempotency and key in self.by_key:
            original = self.by_key[key][0]
            if original.fingerprint != fingerprint and self.config.idempotency_conflict == "error":
                raise ApiError(
                    409,
                    "IDEMPOTENCY_CONFLICT",
                    f"idempotency_key: {key!r} was already used with a different request body (video {original.id})",
                    param="idempotency_key",
                )
            self.counts["replays"] += 1
            return original, True
        if self.config.balance is not None:
            if self.committed_micros(now) + checked.cost_micros > int(self.config.balance * 1_000_000):
                raise self._reject(body, ApiError(402, "INSUFFICIENT_BALANCE", "Your balance is too low for this request; add credits."))
        dup_body = any(v.status(now) is not Status.FAILED for v in self.by_body.get(fingerprint, ()))
        dup_key = key is not None and any(v.status(now) is not Status.FAILED for v in self.by_key.get(key, ()))
        self.counts["creates"] += 1
        self.counts["duplicate_paid"] += dup_body or dup_key
        self.counts["duplicate_bodies"] += dup_body
        self.counts["duplicate_keys"] += dup_key

        seq = len(self.order)
        cfg = self.config
        spread = 1.0 + cfg.jitter * (2.0 * unit(cfg.seed, "render", seq) - 1.0)
        slot = Slot(created=now, render=max(0.0, cfg.render_time * spread * cfg.time_scale), concurrency=cfg.concurrency)
        self.scheduler.add(slot)
        failure = force_failure or (cfg.failure_code if unit(cfg.seed, "fail", seq) < cfg.failure_rate else None)
        params = checked.params
        seed = params.get("seed")
        entry = self._log_entry(body, 202)
        video = Video(
            id="video_" + _hex(cfg.seed, "video", seq),
            seq=seq,
            model=model.model,
            prompt=str(params.get("prompt", "")),
            params=params,
            size=checked.size,
            seconds=int(params.get("duration", 5)),
            cost_micros=checked.cost_micros,
            failure=failure,
            fingerprint=fingerprint,
            key=key,
            request_id=entry.id,
            slot=slot,
            picture_seed=int(seed) if seed is not None else int(unit(cfg.seed, "picture", seq) * 2**31),
        )
        entry.video = video
        self.videos[video.id] = video
        self.order.append(video)
        self.by_body.setdefault(fingerprint, []).append(video)
        if key is not None:
            self.by_key.setdefault(key, []).append(video)
        return video, False

    def committed_micros(self, now: float) -> int:
        """What the account owes for videos completed or still rendering."""
        return sum(v.cost_micros for v in self.order if v.status(now) is not Status.FAILED)

    def _reject(self, body: Mapping[str, Any], exc: ApiError) -> ApiError:
        entry = self._log_entry(body, exc.status)
        entry.error = (exc.code, exc.message)
        self.counts["rejected"] += 1
        return exc

    def record_upstream_failure(self, body: Mapping[str, Any], status: int, code: str, message: str) -> None:
        """Log a create that failed with a 5xx before any video was made."""
        entry = self._log_entry(body, status)
        entry.error = (code, message)

    def _log_entry(self, body: Mapping[str, Any], status: int) -> LogEntry:
        model = body.get("model") if isinstance(body.get("model"), str) else None
        key = body.get("idempotency_key") if isinstance(body.get("idempotency_key"), str) else None
        entry = LogEntry("req_" + _hex(self.config.seed, "request", len(self.log)), self.clock(), model, key, status)
        self.log.append(entry)
        self.log_index[entry.id] = entry
        return entry

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
        self.scheduler.cancel(video.slot, self.clock())
        return video

    def list_videos(self, *, limit: str | None, after: str | None, order: str | None) -> tuple[list[Video], bool]:
        """A page of videos, newest first unless order=asc.

        :raises ApiError: 400 for a bad limit, order or cursor.
        """
        n = _limit_arg(limit)
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
        """A page of the request log, newest first, filtered by status, created_after/before and idempotency_key.

        :raises ApiError: 400 for a bad filter.
        """
        n = _limit_arg(query.get("limit"))
        after = _time_arg("created_after", query.get("created_after"))
        before = _time_arg("created_before", query.get("created_before"))
        status = query.get("status")
        key = query.get("idempotency_key")
        now = self.clock()
        out = []
        for entry in reversed(self.log):
            if after is not None and entry.created < after:
                continue
            if before is not None and entry.created > before:
                continue
            if key is not None and entry.idempotency_key != key:
                continue
            if status is not None and entry.status(now) != status:
                continue
            out.append(entry)
        return out[:n], len(out) > n

    def get_request(self, request_id: str) -> LogEntry:
        """:raises ApiError: 404 when there is no such log entry."""
        entry = self.log_index.get(request_id)
        if entry is None:
            raise ApiError(404, "NOT_FOUND", f"request {request_id!r} does not exist", param="id")
        return entry

    # -- outputs ----------------------------------------------------------------------------------
    def clip_spec(self, video: Video) -> ClipSpec:
        cfg = self.config
        w, h = frame_size(video.size, full_size=cfg.full_size, max_side=cfg.max_side)
        style = video.params.get("style")
        return ClipSpec(video.prompt, video.picture_seed, str(style) if style else None, video.seconds, w, h, cfg.fps)

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
            video.url_token = _hex(self.config.seed, "token", video.id, video.url_count, n=32)
            video.url_issued = issued
            self.tokens[video.url_token] = (video, issued)
        return video.url_token, video.url_issued + ttl

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
            out["output"] = {
                "url": f"{base_url}files/{video.id}.mp4?token={token}",
                "thumbnail_url": f"{base_url}files/{video.id}.jpg?token={token}",
                "content_type": "video/mp4",
                "size_bytes": video.size_bytes,
            }
            cost = video.cost_micros
        elif state is Status.FAILED:
            code = video.error_code() or "UPSTREAM_ERROR"
            out["error"] = {"code": code, "message": _FAILURE_MESSAGES.get(code, "The upstream provider failed to render the video.")}
            cost = 0
        out["metadata"] = {
            "provider": "pixverse",
            "provider_name": "PixVerse",
            "executed_model": video.model,
            "cost_estimate": _usd(video.cost_micros),
            "cost": _usd(cost),
            "cost_currency": "USD",
            "upstream_id": "pv_" + _hex(self.config.seed, "upstream", video.id, n=16),
            "request_id": video.request_id,
        }
        return out

    def request_json(self, entry: LogEntry) -> dict[str, Any]:
        now = self.clock()
        video = entry.video
        status = entry.status(now)
        cost = video.cost_micros if video is not None and status in ("completed", "pending") else None
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
        completions, downloads, faults per kind, the most videos rendering at once."""
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
            "throttled": self.counts["throttled"],
            "faults": dict(self.fault_counts),
            "billed_micros": sum(v.cost_micros for v in self.order if v.status(now) is Status.COMPLETED),
            "encodes": cache.misses,
            "cache_hits": cache.hits,
            "encode_seconds": round(cache.encode_seconds, 4),
            "now": now,
        }

    def completed(self, videos: Iterable[Video]) -> list[Video]:
        """The videos among `videos` that are completed now."""
        now = self.clock()
        return [v for v in videos if v.status(now) is Status.COMPLETED]
