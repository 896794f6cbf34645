"""The Lumenfall gateway (OpenAI-shaped video API): PixVerse V5.6 and the other video models it routes.

Every httpx exception and every non-2xx response is translated into `runner.errors` here, in
`_send`, `_decode` and `_transport_error`, and nowhere else.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import mimetypes
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

import anyio
import httpx

from runner.errors import (
    ConnectError,
    DownloadError,
    ExpiredError,
    NeedsKeyError,
    OutcomeUnknownError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    ServerError,
    TransportError,
    UsageError,
)
from runner.providers.base import Download, VideoStatus
from runner.providers.capabilities import ProviderCaps
from runner.providers.retry_after import parse_retry_after

USER_AGENT = "gridrun"
MAX_MESSAGE = 500
IMAGE_FIELDS = ("input_reference", "last_frame_image")

_STATUSES = {
    "queued": "queued",
    "in_progress": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}

_DEFAULT_CODES = {
    400: "INVALID_REQUEST",
    401: "AUTHENTICATION_FAILED",
    402: "INSUFFICIENT_BALANCE",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    422: "INVALID_REQUEST",
    429: "RATE_LIMITED",
}

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


# -- the client --------------------------------------------------------------------------------------


def make_client(
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    max_connections: int = 100,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """One `httpx.AsyncClient` for a whole run: pooled connections, bounded waits."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        ),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        transport=transport,
    )


def resolve_base_url(explicit: str | None, env_name: str | None, default: str) -> str:
    """The base URL: `explicit`, else the environment variable `env_name`, else `default`.

    :raises UsageError: the URL is not http(s).
    """
    url = explicit or (os.environ.get(env_name, "").strip() if env_name else "") or default
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        source = "base_url" if explicit else (env_name if env_name and os.environ.get(env_name) else "capability data")
        raise UsageError(f"provider base URL {url!r} (from {source}) must start with http:// or https://")
    return url


class LumenfallProvider:
    """Lumenfall's `/videos` API, under a `/v1` or an `/openai/v1` base URL."""

    def __init__(self, caps: ProviderCaps, *, base_url: str | None = None, name: str = "lumenfall") -> None:
        self.name = name
        self.caps = caps
        env = f"{name.upper()}_BASE_URL"
        self.base_url = resolve_base_url(base_url, env, caps.base_url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    @property
    def key_env(self) -> str:
        return self.caps.api_key_env or f"{self.name.upper()}_API_KEY"

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
        env = self.key_env
        key = os.environ.get(env, "").strip()
        if not key:
            raise NeedsKeyError(
                f"{self.name} needs an API key: set {env} in the environment "
                f"(export {env}=lmnfl_...); keys are never read from the manifest"
            )
        return make_client(
            self.base_url,
            headers={"Authorization": f"Bearer {key}"},
            max_connections=max_connections,
            timeout=timeout,
            transport=transport,
        )

    # -- the pure part -------------------------------------------------------------------------------

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
        data = await self._call(client, "POST", "videos", create=True, json=body, headers=headers)
        return self._video(data, op="POST /videos", create=True)

    async def get(self, client: httpx.AsyncClient, video_id: str) -> VideoStatus:
        """`GET /videos/{id}`."""
        path = f"videos/{quote(video_id, safe='')}"
        data = await self._call(client, "GET", path)
        return self._video(data, op=f"GET /{path}")

    async def list(
        self, client: httpx.AsyncClient, *, limit: int = 100, after: str | None = None
    ) -> tuple[builtins.list[VideoStatus], str | None]:
        """`GET /videos?limit&after&order=desc` (OpenAI shape): one page and the next cursor."""
        if not self.caps.has_list_endpoint:
            raise NotImplementedError(f"{self.name} has no endpoint listing videos")
        params: dict[str, Any] = {"limit": max(1, min(limit, 100)), "order": "desc"}
        if after:
            params["after"] = after
        data = await self._call(client, "GET", "videos", params=params)
        items = data.get("data")
        if not isinstance(items, builtins.list):
            raise ServerError("GET /videos: the answer has no 'data' list", status=200, code="MALFORMED_RESPONSE")
        videos = [self._video(item, op="GET /videos") for item in items if isinstance(item, Mapping)]
        cursor = None
        if data.get("has_more") and videos:
            last = data.get("last_id")
            cursor = last if isinstance(last, str) and last else videos[-1].id
        return videos, cursor

    async def find_by_key(
        self, client: httpx.AsyncClient, idempotency_key: str, *, created_after: float | None = None
    ) -> VideoStatus | None:
        """The video a lost create call made, found in the native request log (`GET <root>/v1/requests`).

        Only an entry that carries the same idempotency key counts, whatever the server filtered.
        """
        url = f"{_api_root(client.base_url)}/v1/requests"
        params: dict[str, Any] = {"idempotency_key": idempotency_key, "limit": 100}
        if created_after is not None:
            params["created_after"] = int(created_after)
        for _page in range(20):
            data = await self._call(client, "GET", url, params=params, op="GET /v1/requests")
            entries = data.get("data")
            if not isinstance(entries, builtins.list):
                raise ServerError(
                    "GET /v1/requests: the answer has no 'data' list", status=200, code="MALFORMED_RESPONSE"
                )
            for entry in entries:
                if isinstance(entry, Mapping) and _entry_key(entry) == idempotency_key:
                    video_id = _entry_video_id(entry)
                    if video_id:
                        return await self.get(client, video_id)
            last = data.get("last_id") or (entries[-1].get("id") if entries and isinstance(entries[-1], Mapping) else None)
            if not data.get("has_more") or not isinstance(last, str) or last == params.get("after"):
                return None
            params["after"] = last
        return None

    async def cancel(self, client: httpx.AsyncClient, video_id: str) -> None:
        """`DELETE /videos/{id}`: best effort, nothing is refunded."""
        await self._call(client, "DELETE", f"videos/{quote(video_id, safe='')}", expect_body=False)

    async def download(self, client: httpx.AsyncClient, url: str, dest: Path) -> Download:
        """Stream `url` to `dest` through `dest.part`: length and type checked, SHA-256, fsync, rename."""
        return await download(client, url, Path(dest))

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
        **kwargs: Any,
    ) -> dict[str, Any]:
        op = op or f"{method} /{url}"
        response = await _send(client, method, url, op=op, create=create, **kwargs)
        return _decode(response, op=op, create=create, expect_body=expect_body, key_env=self.key_env)

    def _video(self, data: Any, *, op: str, create: bool = False) -> VideoStatus:
        try:
            return parse_video(data)
        except ValueError as exc:
            message = f"{op}: the answer is not a video object ({exc})"
            if create:
                raise OutcomeUnknownError(message + "; the job may have been created", status=200) from exc
            raise ServerError(message, status=200, code="MALFORMED_RESPONSE") from exc


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
        data = path.read_bytes()
    except OSError as exc:
        raise RejectedError(f"{field}: cannot read {path}: {exc.strerror or exc}", code="INVALID_INPUT") from exc
    mime = image_mime(path, data)
    if mime is None:
        raise RejectedError(f"{field}: {path} is not an image (PNG, JPEG, WebP, GIF)", code="INVALID_INPUT")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_mime(path: Path, data: bytes) -> str | None:
    """The image MIME type of `data`, from its magic bytes, else from `path`'s extension."""
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed and guessed.startswith("image/"):
        return guessed
    return None


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
    return VideoStatus(
        id=video_id,
        status=_STATUSES.get(raw_status.lower(), "unknown"),
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
    if not amount.is_finite() or amount < 0:
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


# -- reconciliation ----------------------------------------------------------------------------------


def _api_root(base_url: httpx.URL) -> str:
    root = str(base_url).rstrip("/")
    for suffix in ("/openai/v1", "/v1"):
        if root.endswith(suffix):
            return root[: -len(suffix)]
    return root


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


# -- the boundary: httpx and HTTP statuses into runner.errors ----------------------------------------


def _sim_reset() -> tuple[type[BaseException], ...]:
    """`runner.sim.SimulatedReset`, the in-process stand-in for a reset connection, when the sim exists."""
    try:
        from runner.sim import SimulatedReset
    except ImportError:
        return ()
    return (SimulatedReset,)


def _secret(client: httpx.AsyncClient) -> str | None:
    auth = client.headers.get("authorization")
    if not auth:
        return None
    _, _, token = auth.partition(" ")
    return token.strip() or auth.strip()


def redact(text: str, secret: str | None) -> str:
    """`text` without `secret`, cut to a readable length."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


async def _send(
    client: httpx.AsyncClient, method: str, url: str, *, op: str, create: bool, **kwargs: Any
) -> httpx.Response:
    try:
        return await client.request(method, url, **kwargs)
    except httpx.RequestError as exc:
        raise _transport_error(exc, op=op, create=create, secret=_secret(client)) from exc
    except _sim_reset() as exc:
        raise _transport_error(exc, op=op, create=create, secret=_secret(client)) from exc


def _transport_error(exc: BaseException, *, op: str, create: bool, secret: str | None) -> ProviderError:
    detail = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, secret)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)):
        return ConnectError(f"{op}: could not connect ({detail}); the request was not sent")
    if isinstance(exc, (httpx.DecodingError, httpx.TooManyRedirects)):
        if create:
            return OutcomeUnknownError(f"{op}: the answer could not be read ({detail}); the job may have been created")
        return ServerError(f"{op}: the answer could not be read ({detail})", code="MALFORMED_RESPONSE")
    if create:
        return OutcomeUnknownError(
            f"{op}: the connection failed after the request may have been sent ({detail}); "
            "the job may have been created"
        )
    return TransportError(f"{op}: the connection failed ({detail})")


_MALFORMED = object()


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return _MALFORMED


def _decode(
    response: httpx.Response, *, op: str, create: bool, expect_body: bool, key_env: str
) -> dict[str, Any]:
    body = _json(response)
    status = response.status_code
    if 200 <= status < 300:
        if not expect_body:
            return body if isinstance(body, dict) else {}
        if isinstance(body, dict):
            return body
        what = "malformed JSON" if body is _MALFORMED else "not a JSON object"
        message = f"{op}: HTTP {status} with {what}"
        if create:
            raise OutcomeUnknownError(message + "; the job may have been created", status=status)
        raise ServerError(message, status=status, code="MALFORMED_RESPONSE")
    raise status_error(response, body if body is not _MALFORMED else None, op=op, key_env=key_env)


def status_error(
    response: httpx.Response, body: Any, *, op: str, key_env: str, read: bool = True
) -> ProviderError:
    """The `ProviderError` for a non-2xx `response` whose JSON body (or None) is `body`."""
    status = response.status_code
    code, message = _error_fields(body)
    if not message:
        text = response.text if body is None and read else ""
        message = text.strip() or response.reason_phrase or "no message"
    auth = response.request.headers.get("authorization", "")
    message = redact(f"{op}: {message}", auth.partition(" ")[2].strip() or None)
    retry_after = parse_retry_after(response.headers, body)
    if status == 429:
        return RateLimitedError(message, status=status, code=code or "RATE_LIMITED", retry_after=retry_after)
    if status >= 500 or status == 408:
        return ServerError(message, status=status, code=code, retry_after=retry_after)
    if status == 401:
        return RejectedError(f"{message} (check {key_env})", status=status, code="AUTHENTICATION_FAILED")
    if status == 402:
        return RejectedError(f"{message} (top up the account balance)", status=status, code="INSUFFICIENT_BALANCE")
    if 400 <= status < 500:
        return RejectedError(message, status=status, code=code or _DEFAULT_CODES.get(status, f"HTTP_{status}"))
    return ServerError(f"{message} (unexpected HTTP {status})", status=status, code=code, retry_after=retry_after)


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, Mapping):
        return None, None
    code = message = None
    error = body.get("error")
    if isinstance(error, Mapping):
        code = _str(error.get("code")) or _str(error.get("type"))
        message = _str(error.get("message"))
    elif isinstance(error, str):
        message = error
    if message is None:
        detail = body.get("detail", body.get("message"))
        if isinstance(detail, str):
            message = detail
        elif detail is not None:
            message = str(detail)
    return code or _str(body.get("code")), message


# -- downloads ---------------------------------------------------------------------------------------


@dataclass
class _Sniff:
    content_type: str
    head: bytes = b""
    decided: bool = False


def _check_type(sniff: _Sniff, op: str) -> None:
    media = sniff.content_type.split(";")[0].strip().lower()
    if media.startswith("video/"):
        sniff.decided = True
        return
    if media in ("", "application/octet-stream", "binary/octet-stream"):
        head = sniff.head
        if head[4:8] == b"ftyp" or head.startswith(b"\x1a\x45\xdf\xa3"):
            sniff.decided = True
            return
    raise DownloadError(f"{op}: not a video (Content-Type {sniff.content_type or 'missing'!r})", code="WRONG_TYPE")


def _location(url: httpx.URL) -> str:
    return f"GET {url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}"


async def download(client: httpx.AsyncClient, url: str, dest: Path) -> Download:
    """Stream `url` to `dest`, all or nothing: `.part` file, length and type checks, fsync, rename.

    The API key goes only to the API's own origin; output URLs elsewhere are fetched without it.

    :raises ExpiredError: 403, 404 or 410.
    :raises DownloadError: a short or empty body, or not a video; the `.part` file is removed.
    """
    target = httpx.URL(url)
    if target.is_relative_url:
        target = client.base_url.join(url)
    op = _location(target)
    secret = _secret(client)
    request = client.build_request("GET", target, headers={"Accept": "video/*, */*"})
    if (target.scheme, target.host, target.port) != (client.base_url.scheme, client.base_url.host, client.base_url.port):
        request.headers.pop("authorization", None)
    try:
        response = await client.send(request, stream=True, follow_redirects=True)
    except httpx.RequestError as exc:
        if isinstance(exc, httpx.UnsupportedProtocol):
            raise DownloadError(f"{op}: unsupported URL", code="BAD_URL") from exc
        raise _transport_error(exc, op=op, create=False, secret=secret) from exc
    except _sim_reset() as exc:
        raise _transport_error(exc, op=op, create=False, secret=secret) from exc
    try:
        return await _save(response, dest, op=op, secret=secret)
    finally:
        await response.aclose()


async def _save(response: httpx.Response, dest: Path, *, op: str, secret: str | None) -> Download:
    status = response.status_code
    if status in (403, 404, 410):
        raise ExpiredError(f"{op}: the output URL is gone (HTTP {status})", status=status, code="EXPIRED")
    if not 200 <= status < 300:
        try:
            await response.aread()
        except httpx.RequestError:
            raise status_error(response, None, op=op, key_env="the API key", read=False) from None
        body = _json(response)
        raise status_error(response, body if body is not _MALFORMED else None, op=op, key_env="the API key")
    expected = _int(response.headers.get("content-length"))
    sniff = _Sniff(response.headers.get("content-type", ""))
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    done = False
    try:
        with open(part, "wb") as f:
            try:
                async for chunk in response.aiter_bytes():
                    if not sniff.decided:
                        sniff.head += chunk[:16]
                        if len(sniff.head) >= 12:
                            _check_type(sniff, op)
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            except httpx.RequestError as exc:
                raise DownloadError(
                    f"{op}: truncated after {size} bytes"
                    + (f" of {expected}" if expected is not None else "")
                    + f" ({redact(type(exc).__name__ + ': ' + str(exc), secret)})",
                    status=status,
                    code="TRUNCATED",
                ) from exc
            except _sim_reset() as exc:
                raise DownloadError(f"{op}: truncated after {size} bytes (connection reset)", code="TRUNCATED") from exc
            if size == 0:
                raise DownloadError(f"{op}: empty body", status=status, code="EMPTY")
            if not sniff.decided:
                _check_type(sniff, op)
            if expected is not None and response.num_bytes_downloaded != expected:
                raise DownloadError(
                    f"{op}: got {response.num_bytes_downloaded} bytes, Content-Length said {expected}",
                    status=status,
                    code="TRUNCATED",
                )
            f.flush()
            await anyio.to_thread.run_sync(os.fsync, f.fileno())
        await anyio.to_thread.run_sync(_commit, part, dest)
        done = True
    finally:
        if not done:
            part.unlink(missing_ok=True)
    content_type = sniff.content_type.split(";")[0].strip() or "video/mp4"
    return Download(path=dest, sha256=digest.hexdigest(), size_bytes=size, content_type=content_type)


def _commit(part: Path, dest: Path) -> None:
    os.replace(part, dest)
    try:
        fd = os.open(dest.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
