"""How long a provider asked us to wait: `Retry-After`, `retry-after-ms`, or a JSON body `retry_after`."""

from __future__ import annotations

import json
import math
import time
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

MAX_SENSIBLE_WAIT = 24 * 3600.0
"""A wait longer than a day is taken for garbage, not advice."""


def parse_retry_after(headers: Mapping[str, str], body: Any, *, now: float | None = None) -> float | None:
    """Seconds to wait before the next call, or None when the response gives no usable hint.

    Reads `Retry-After` (delay-seconds or an HTTP-date), `retry-after-ms`, and `retry_after` in a JSON
    body, top-level or under `"error"`. When several are given the largest sensible one wins: a value
    that is not a number, negative, not finite or above a day is ignored; an HTTP-date in the past
    means 0.
    """
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    candidates: list[float] = []

    value = lowered.get("retry-after")
    if value is not None:
        seconds = _number(value)
        if seconds is None:
            seconds = _http_date(value, time.time() if now is None else now)
        _add(candidates, seconds)

    value = lowered.get("retry-after-ms")
    if value is not None:
        ms = _number(value)
        _add(candidates, ms / 1000.0 if ms is not None else None)

    for raw in _body_values(body):
        _add(candidates, _number(raw))

    return max(candidates) if candidates else None


def _add(candidates: list[float], seconds: float | None) -> None:
    if seconds is not None and math.isfinite(seconds) and 0 <= seconds <= MAX_SENSIBLE_WAIT:
        candidates.append(float(seconds))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _http_date(value: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def _body_values(body: Any) -> list[Any]:
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return []
    if not isinstance(body, Mapping):
        return []
    found = []
    if "retry_after" in body:
        found.append(body["retry_after"])
    error = body.get("error")
    if isinstance(error, Mapping) and "retry_after" in error:
        found.append(error["retry_after"])
    return found
