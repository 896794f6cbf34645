"""The simulator as an ASGI app: the Lumenfall video API under /v1 and /openai/v1, output files, and /_sim.

Each API route is an `Endpoint`: it counts the call, asks the fault plan what to break, checks the rate
limit and the key, runs its handler, and sends the reply, possibly cut short, stalled or dropped.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import math
import os
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from runner.limits import open_files_fix, too_many_open_files
from runner.providers.base import SIMULATOR_HEADER
from runner.sim.config import ConfigError, FaultRule, SimConfig
from runner.sim.engine import Sim
from runner.sim.errors import ApiError
from runner.sim.faults import DOWNLOAD_ROUTES, DROP_EXTENSION, SimulatedReset
from runner.sim.forms import parse_body
from runner.sim.lifecycle import Video
from runner.sim.validate import dry_run
from runner.sim.video import spritesheet
from runner.sim.world import World

if TYPE_CHECKING:
    from runner.providers.capabilities import ProviderCaps

JSON = "application/json"
PREFIXES = ("/v1", "/openai/v1")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    410: "not_found_error",
    416: "invalid_request_error",
    429: "rate_limit_error",
}
_REFUSED_CODES = {405: "METHOD_NOT_ALLOWED", 501: "NOT_IMPLEMENTED"}
_SERVER_CODES = {500: "INTERNAL_ERROR", 502: "ALL_PROVIDERS_EXHAUSTED", 503: "UPSTREAM_ERROR", 504: "UPSTREAM_ERROR"}


@dataclass(slots=True)
class Reply:
    """A response before it is sent."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(obj).encode(), JSON, dict(headers or {}))


def error_reply(exc: ApiError) -> Reply:
    kind = _ERROR_TYPES.get(exc.status, "server_error" if exc.status >= 500 else "invalid_request_error")
    error: dict[str, Any] = {"message": exc.message, "type": kind, "code": exc.code}
    if exc.param:
        error["param"] = exc.param
    return json_reply({"error": error, **exc.extra}, exc.status, exc.headers)


def rate_limited(seconds: float, style: str, now: float, message: str) -> ApiError:
    """A 429 whose retry hint is given in `style`: seconds | date | ms | body | all | none."""
    whole = max(1, math.ceil(seconds))
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if style in ("seconds", "all"):
        headers["Retry-After"] = str(whole)
    if style == "date":
        headers["Retry-After"] = formatdate(math.ceil(now) + whole, usegmt=True)
    if style in ("ms", "all"):
        headers["retry-after-ms"] = str(math.ceil(seconds * 1000))
    if style in ("body", "all"):
        extra = {"detail": f"Request was throttled. Your rate limit resets in ~{whole}s.", "status": 429, "retry_after": whole}
    return ApiError(429, "RATE_LIMITED", message, headers=headers, extra=extra)


@dataclass(slots=True)
class Call:
    """One API call as a handler sees it: the request, its route name and the faults that fired on it."""

    request: Request
    route: str
    faults: dict[str, FaultRule]
    body: dict[str, Any] | None = None

    @property
    def root(self) -> str:
        return str(self.request.base_url)

    @property
    def openai(self) -> bool:
        """Whether the call came by the OpenAI-shaped route (`/openai/v1`), not the native one (`/v1`)."""
        return self.request.url.path.startswith("/openai/")

    async def json_body(self) -> dict[str, Any]:
        if self.body is None:
            self.body = parse_body(self.request.headers.get("content-type", ""), await self.request.body())
        return self.body


Handler = Callable[[Sim, Call], Awaitable[Reply]]


async def _drop(scope: Scope, receive: Receive, *, graceful: bool) -> bool:
    """Close the client's connection, if the server offers a way (see serve.py); False when it does not."""
    drop = (scope.get("extensions") or {}).get(DROP_EXTENSION)
    if drop is None:
        return False
    drop(graceful)
    while (await receive())["type"] != "http.disconnect":
        pass
    return True


class Endpoint:
    """An ASGI app for one route of the API, with fault injection around its handler."""

    def __init__(self, sim: Sim, route: str, handler: Handler) -> None:
        self.sim = sim
        self.route = route
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.sim
        request = Request(scope, receive)
        route = "dry_run" if self.route == "create" and _truthy(request.query_params.get("dryRun")) else self.route
        sim.requests[route] += 1
        faults: dict[str, FaultRule] = {}
        reset_phase = None
        for rule, coin in sim.faults.fire(route):
            kind = rule.fault
            if kind == "reset":
                kind = "reset_before" if coin < 0.5 else "reset_after"
            if kind in ("reset_before", "reset_after"):
                reset_phase = reset_phase or kind
            if kind == "server_error" and rule.status is None:
                statuses = sim.config.error_statuses
                rule = FaultRule("server_error", status=statuses[int(coin * len(statuses))],
                                 retry_after=rule.retry_after)
            faults.setdefault(kind, rule)
            sim.fault_counts[kind] += 1
        if reset_phase == "reset_before":
            if not await _drop(scope, receive, graceful=False):
                raise SimulatedReset(phase="before", route=route)
            return
        if "slow" in faults:
            await anyio.sleep(_delay(faults["slow"], sim.config))
        call = Call(request, route, faults)
        try:
            self._admit(call)
            if "held" in faults:
                # A gateway took the create and holds it: the client's connection drops unanswered, and the
                # request reaches the provider only when released (`Sim.release_held`).
                sim.hold(await call.json_body(), failure=faults.get("job_failure"), openai=call.openai)
                if not await _drop(scope, receive, graceful=False):
                    raise SimulatedReset(phase="held", route=route)
                return
            reply = await self.handler(sim, call)
        except ApiError as exc:
            if route == "create" and exc.status >= 500:
                await self._log_upstream_failure(call, exc)
            reply = error_reply(exc)
        except (OSError, ImportError) as exc:
            # The machine's limits (too many open files, in-process those of the run itself): the server's
            # failure, a 500 the client retries, not a crash of the process serving it. Not logged as an
            # upstream failure: a create may have been made before it (found again by its key).
            if not isinstance(exc, OSError) and not too_many_open_files(exc):
                raise
            reply = error_reply(host_error(exc))
        except ClientDisconnect:
            # The client went away before its request's body came (a run killed while a `slow` fault held its
            # create): nothing was made, and no one is there to answer.
            return
        if reset_phase == "reset_after":
            if not await _drop(scope, receive, graceful=False):
                raise SimulatedReset(phase="after", route=route)
            return
        await self._send(scope, receive, send, call, reply)

    def _admit(self, call: Call) -> None:
        """Rate limit, key and injected refusals, in the order a gateway applies them."""
        sim, cfg, route, faults = self.sim, self.sim.config, call.route, call.faults
        now = sim.clock()
        if route != "file":
            if sim.bucket is not None:
                wait = sim.bucket.take(now)
                if wait > 0:
                    sim.counts["throttled"] += 1
                    raise rate_limited(wait, cfg.retry_after_style, now, f"Rate limit of {cfg.rate_limit:g} requests per second exceeded.")
            if cfg.api_key is not None:
                given = call.request.headers.get("authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {cfg.api_key}".encode()):
                    raise ApiError(401, "AUTHENTICATION_FAILED", "Invalid or missing API key. Send 'Authorization: Bearer <key>'.")
        if "rate_limited" in faults:
            rule = faults["rate_limited"]
            seconds = rule.retry_after if rule.retry_after is not None else cfg.retry_after
            raise rate_limited(seconds, rule.retry_style or cfg.retry_after_style, now, "Too many requests; slow down.")
        if "server_error" in faults:
            rule = faults["server_error"]
            status = rule.status or 500
            # a rule's `retry_after`: the service unavailable for that long (a maintenance), said as a gateway says
            # it, a Retry-After in whole seconds
            wait = None if rule.retry_after is None else {"Retry-After": str(max(1, math.ceil(rule.retry_after)))}
            raise ApiError(status, _SERVER_CODES.get(status, "UPSTREAM_ERROR"), f"Simulated upstream failure (HTTP {status}).",
                           headers=wait)
        if "auth_failed" in faults:
            raise ApiError(401, "AUTHENTICATION_FAILED", "Invalid or missing API key.")
        if "insufficient_balance" in faults:
            raise ApiError(402, "INSUFFICIENT_BALANCE", "Your balance is too low for this request; add credits.")
        if "model_disabled" in faults:
            raise ApiError(404, "MODEL_DISABLED", "model: this model is disabled for now; choose another",
                           param="model")
        if "not_found" in faults:
            if route in ("balance", "delete", "requests"):
                raise ApiError(404, "NOT_FOUND", "no such route")
            raise ApiError(404, "NOT_FOUND", "no such video", param="id")
        if "not_allowed" in faults:
            status = faults["not_allowed"].status or 405
            raise ApiError(status, _REFUSED_CODES.get(status, "METHOD_NOT_ALLOWED"),
                           f"{call.request.method} is not supported on this route.",
                           headers={"Allow": "GET"} if status == 405 else None)
        if "expired" in faults:
            status = faults["expired"].status or cfg.expired_status
            raise ApiError(status, "URL_EXPIRED", "the URL has expired; GET the video again for a fresh one")

    async def _log_upstream_failure(self, call: Call, exc: ApiError) -> None:
        try:
            body = await call.json_body()
        except ApiError:
            body = {}
        self.sim.record_upstream_failure(body, exc.status, exc.code, exc.message)

    async def _send(self, scope: Scope, receive: Receive, send: Send, call: Call, reply: Reply) -> None:
        faults = call.faults
        body = reply.body
        head = scope["method"] == "HEAD"
        ok_download = call.route in DOWNLOAD_ROUTES and reply.status in (200, 206)
        if "malformed_json" in faults:
            body = body[: max(1, len(body) // 2)] if body else b"{"
            reply.content_type = reply.content_type or JSON
        if ok_download and "wrong_content_type" in faults:
            reply.content_type = "text/html; charset=utf-8"
        if ok_download and "corrupt" in faults:
            body = (np.frombuffer(body, dtype=np.uint8) ^ 0xA5).tobytes()
        cut = next((k for k in ("reset_mid_body", "truncated") if ok_download and k in faults), None)
        if ok_download and not head and not cut and not {"wrong_content_type", "corrupt"} & faults.keys():
            self.sim.counts["downloads"] += 1
        counted = ok_download and not head  # the bytes of videos and images sent: `download_bytes`
        headers = [(b"content-length", str(len(body)).encode())]
        if reply.content_type:
            headers.append((b"content-type", reply.content_type.encode()))
        headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if head:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        half = len(body) // 2
        if cut:
            await send({"type": "http.response.body", "body": body[:half], "more_body": True})
            if counted:
                self.sim.counts["download_bytes"] += half
            graceful = cut == "truncated"
            if await _drop(scope, receive, graceful=graceful):
                return
            if not graceful:
                raise SimulatedReset(phase="mid_body", route=call.route)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if "stall_body" in faults and body:
            await send({"type": "http.response.body", "body": body[:half], "more_body": True})
            if counted:
                self.sim.counts["download_bytes"] += half
            await anyio.sleep(_delay(faults["stall_body"], self.sim.config))
            body = body[half:]
        await send({"type": "http.response.body", "body": body, "more_body": False})
        if counted:
            self.sim.counts["download_bytes"] += len(body)


def _delay(rule: FaultRule, config: SimConfig) -> float:
    return rule.delay if rule.delay is not None else config.slow_delay


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


# -- handlers -------------------------------------------------------------------------------------


def host_error(exc: OSError | ImportError) -> ApiError:
    """The 500 a request the machine could not serve (`exc`: too many open files, a full disk) is answered."""
    # said to the run whose requests it serves, whose concurrency sets how many it serves at once
    why = open_files_fix("run") if too_many_open_files(exc) else f"{type(exc).__name__}: {exc}"
    return ApiError(500, "INTERNAL_ERROR", f"The simulator could not serve the request: {why}.")


def _clip(sim: Sim, video: Video) -> None:
    """`sim.clip(video)`; a module it loads late that could not be opened for want of file descriptors (Pillow's,
    at the first image made: "cannot import name 'ImageFile' from 'PIL'") is the OSError it is, told while the
    descriptors are still short (`too_many_open_files`), not a package broken.

    :raises OSError: too many open files, or what else kept the clip from being made."""
    try:
        sim.clip(video)
    except ImportError as exc:
        if too_many_open_files(exc):
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE)) from exc
        raise


async def _ready(sim: Sim, videos: list[Video], now: float) -> None:
    """Encode the clips of the videos completed at `now` (off the event loop) so their size is known.

    :raises OSError: the first encoding that failed so (too many open files), alone (not in a group), once
        the others have ended.
    """
    todo = [v for v in sim.completed(videos, now) if v.size_bytes is None]
    if len(todo) == 1:
        await anyio.to_thread.run_sync(_clip, sim, todo[0])
    elif todo:
        failed: list[OSError] = []

        async def clip(video: Video) -> None:
            try:
                await anyio.to_thread.run_sync(_clip, sim, video)
            except OSError as exc:
                failed.append(exc)

        async with anyio.create_task_group() as tg:
            for v in todo:
                tg.start_soon(clip, v)
        if failed:
            raise failed[0]


async def _video_objects(sim: Sim, call: Call, videos: list[Video], *, now: float | None = None) -> list[dict[str, Any]]:
    # One moment for the encoding and the answer: a video that completes between them would be answered
    # completed with no size (a request served slowly, on a loaded machine).
    now = sim.clock() if now is None else now
    await _ready(sim, videos, now)
    status = None
    if "unknown_status" in call.faults:
        status = call.faults["unknown_status"].value or "processing"
    return [sim.video_json(v, call.root, now=now, status=status) for v in videos]


async def create_video(sim: Sim, call: Call) -> Reply:
    body = await call.json_body()
    if call.route == "dry_run":
        return json_reply(dry_run(body, openai=call.openai, caps=sim.caps))
    failure = call.faults.get("job_failure")
    forced = (failure.code or sim.config.failure_code) if failure else None
    video, replay = sim.create(body, force_failure=forced, openai=call.openai)
    [obj] = await _video_objects(sim, call, [video], now=None if replay else video.created)
    if replay:
        return json_reply(obj, 200, {"Idempotent-Replayed": "true"})
    return json_reply(obj, 202)


async def get_video(sim: Sim, call: Call) -> Reply:
    [obj] = await _video_objects(sim, call, [sim.get(call.request.path_params["video_id"])])
    return json_reply(obj)


async def list_videos(sim: Sim, call: Call) -> Reply:
    q = call.request.query_params
    page, more = sim.list_videos(limit=q.get("limit"), after=q.get("after"), order=q.get("order"))
    data = await _video_objects(sim, call, page)
    return json_reply(
        {
            "object": "list",
            "data": data,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": more,
        }
    )


async def delete_video(sim: Sim, call: Call) -> Reply:
    sim.cancel(call.request.path_params["video_id"])
    return Reply(204, content_type=None)


async def video_content(sim: Sim, call: Call) -> Reply:
    video_id = call.request.path_params["video_id"]
    sim.get(video_id)
    variant = call.request.query_params.get("variant", "video")
    if variant not in VARIANTS:
        message = f"variant: must be one of {', '.join(VARIANTS)}, got {variant!r}"
        raise ApiError(400, "INVALID_REQUEST", message, param="variant")
    video = sim.content(video_id)
    return await _bytes(sim, call, video, variant)


async def output_file(sim: Sim, call: Call) -> Reply:
    name = call.request.path_params["name"]
    video_id, dot, ext = name.rpartition(".")
    if not dot or ext not in ("mp4", "jpg"):
        raise ApiError(404, "NOT_FOUND", "no such file")
    video = sim.file(video_id, call.request.query_params.get("token"))
    return await _bytes(sim, call, video, "video" if ext == "mp4" else "thumbnail")


VARIANTS = ("video", "thumbnail", "spritesheet")
"""The `variant` values of `GET /videos/{id}/content`: the MP4, its poster, a JPEG grid of its frames."""


async def _bytes(sim: Sim, call: Call, video: Video, variant: str) -> Reply:
    if variant == "spritesheet":
        data, ctype = await anyio.to_thread.run_sync(spritesheet, sim.clip_spec(video)), "image/jpeg"
    else:
        clip = await anyio.to_thread.run_sync(sim.clip, video)
        data, ctype = (clip.mp4, "video/mp4") if variant == "video" else (clip.jpeg, "image/jpeg")
    if "no_ranges" in call.faults:
        return ranged(None, data, ctype)
    return ranged(call.request.headers.get("range"), data, ctype, call.request.headers.get("if-range"))


def ranged(header: str | None, data: bytes, content_type: str, if_range: str | None = None) -> Reply:
    """200 with all of `data`, or 206 with the one byte range asked for, or 416. A range asked `If-Range` of
    another validator than this body's ETag (a date too: no Last-Modified is sent) gets the whole body."""
    headers = {"Accept-Ranges": "bytes", "ETag": '"' + hashlib.sha256(data).hexdigest()[:32] + '"'}
    size = len(data)
    if if_range is not None and if_range.strip() != headers["ETag"]:
        header = None
    if not header or not header.startswith("bytes=") or "," in header:
        return Reply(200, data, content_type, headers)
    first, _, last = header[6:].strip().partition("-")
    try:
        if first:
            start, end = int(first), (int(last) if last else size - 1)
        else:
            start, end = max(0, size - int(last)), size - 1
    except ValueError:
        return Reply(200, data, content_type, headers)
    end = min(end, size - 1)
    if start >= size or start > end:
        headers["Content-Range"] = f"bytes */{size}"
        return json_reply({"error": {"message": f"range: {header!r} is not satisfiable (size {size})", "type": "invalid_request_error", "code": "RANGE_NOT_SATISFIABLE"}}, 416, headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Reply(206, data[start : end + 1], content_type, headers)


async def list_requests(sim: Sim, call: Call) -> Reply:
    entries, more = sim.list_requests(call.request.query_params)
    data = [sim.request_json(e) for e in entries]
    return json_reply(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }
    )


async def get_request(sim: Sim, call: Call) -> Reply:
    return json_reply(sim.request_json(sim.log.get(call.request.path_params["request_id"])))


async def balance(sim: Sim, call: Call) -> Reply:
    cfg = sim.config
    committed = sim.committed_micros(sim.clock())
    balance = cfg.balance_micros
    left = None if balance is None else (balance - committed) / 1_000_000
    return json_reply({"object": "balance", "balance": left, "currency": "USD", "unlimited": balance is None})


# -- control routes -------------------------------------------------------------------------------


def _shown(config: SimConfig) -> dict[str, Any]:
    knobs = config.to_dict()
    if knobs["api_key"] is not None:
        knobs["api_key"] = "***"
    return knobs


def _control_refusal(sim: Sim, request: Request) -> Response | None:
    """Why a request that changes the simulator (`POST /_sim/config`, `/_sim/reset`, `/_sim/release`) is refused,
    None when it is not: the key (with `--api-key`), and no request a web page can make from another site (a form or a text body,
    which a browser sends cross-origin without asking first, or any request that says it comes from another
    origin)."""
    def refused(status: int, code: str, message: str) -> Response:
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "code": code}}, status)

    key = sim.config.api_key
    if key is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            return refused(401, "AUTHENTICATION_FAILED",
                           "Invalid or missing API key. Send 'Authorization: Bearer <key>' to change the simulator.")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
        return refused(403, "CROSS_ORIGIN", "the simulator is changed only from its own origin")
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json" and (kind or request.headers.get("content-length", "0") not in ("", "0")):
        return refused(415, "UNSUPPORTED_MEDIA_TYPE", "send the knobs as JSON (Content-Type: application/json)")
    return None


def _control_routes(sim: Sim) -> list[BaseRoute]:
    async def stats(request: Request) -> Response:
        return JSONResponse(sim.stats())

    async def get_config(request: Request) -> Response:
        return JSONResponse(_shown(sim.config))

    async def patch_config(request: Request) -> Response:
        refusal = _control_refusal(sim, request)
        if refusal is not None:
            return refusal
        try:
            patch = json.loads(await request.body() or b"{}")
            if not isinstance(patch, dict):
                raise ConfigError("expected a JSON object of knobs")
            config = sim.configure(patch)
        except (ValueError, ConfigError) as exc:
            return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error", "code": "INVALID_CONFIG"}}, 400)
        return JSONResponse(_shown(config))

    async def release(request: Request) -> Response:
        refusal = _control_refusal(sim, request)
        if refusal is not None:
            return refusal
        return JSONResponse({"released": sim.release_held()})

    async def reset(request: Request) -> Response:
        refusal = _control_refusal(sim, request)
        if refusal is not None:
            return refusal
        sim.reset()
        return Response(status_code=204)

    routes: list[BaseRoute] = []
    for prefix in ("", *PREFIXES):
        routes += [
            Route(prefix + "/_sim/stats", stats, methods=["GET"]),
            Route(prefix + "/_sim/config", get_config, methods=["GET"]),
            Route(prefix + "/_sim/config", patch_config, methods=["POST", "PATCH"]),
            Route(prefix + "/_sim/reset", reset, methods=["POST"]),
            Route(prefix + "/_sim/release", release, methods=["POST"]),
        ]
    return routes


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    code = "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED"
    message = f"{request.method} {request.url.path}: no such route" if status == 404 else f"{request.method} is not allowed on {request.url.path}"
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "code": code}}, status)


_IDENTITY = (SIMULATOR_HEADER.lower().encode("latin-1"), b"1")


class _Identified:
    """Every answer of the app wrapped carries `SIMULATOR_HEADER`: a client (gridrun's runs) can tell a simulator's
    placeholder videos from a provider's. And a `Date` header, the simulator's `clock` when the answer starts (the
    clock its videos' `created_at` is read off), as a provider's server stamps its answers."""

    def __init__(self, app: Any, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def identified(message: Any) -> None:
            if message["type"] == "http.response.start":
                date = (b"date", formatdate(self.clock(), usegmt=True).encode("latin-1"))
                message["headers"] = [*message.get("headers", ()), _IDENTITY, date]
            await send(message)

        await self.app(scope, receive, identified)


def create_app(config: SimConfig, *, clock: Callable[[], float] | None = None, world: World | None = None,
               caps: ProviderCaps | None = None) -> Starlette:
    """The simulator app. `app.state.sim` is the `Sim` (`.stats()`, `.config`, `.configure(patch)`).

    :param clock: seconds since the epoch; defaults to `time.time`. Tests pass a fake one and move it.
    :param world: the file the world is kept in (`runner.sim.world`): replayed now, appended to as it changes.
    :param caps: the capability data simulated (models, parameters, prices); gridrun's built-in data when None.
    """
    sim = Sim(config, clock=clock or time.time, world=world, caps=caps)

    def endpoint(path: str, route: str, handler: Handler, methods: list[str]) -> list[BaseRoute]:
        return [Route(prefix + path, Endpoint(sim, route, handler), methods=methods) for prefix in PREFIXES]

    routes = [
        *endpoint("/videos", "create", create_video, ["POST"]),
        *endpoint("/videos", "list", list_videos, ["GET"]),
        *endpoint("/videos/{video_id}", "get", get_video, ["GET"]),
        *endpoint("/videos/{video_id}", "delete", delete_video, ["DELETE"]),
        *endpoint("/videos/{video_id}/content", "content", video_content, ["GET"]),
        Route("/v1/requests", Endpoint(sim, "requests", list_requests), methods=["GET"]),
        Route("/v1/requests/{request_id}", Endpoint(sim, "requests", get_request), methods=["GET"]),
        Route("/v1/balance", Endpoint(sim, "balance", balance), methods=["GET"]),
        Route("/files/{name}", Endpoint(sim, "file", output_file), methods=["GET"]),
        *_control_routes(sim),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found},
                    middleware=[Middleware(_Identified, clock=sim.clock)])
    app.state.sim = sim
    return app
