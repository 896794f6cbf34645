"""How long a provider asked us to wait: `Retry-After`, `retry-after-ms`, or a JSON body `retry_after`."""

from __future__ import annotations

import json
import math
import time
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

MAX_SENSIBLE_WAIT = 24 * 3600.0
"""A wait longer than a day is read as a day: far past the longest pause gridrun honours (`pacing.MAX_PAUSE`),
which such a wait gets, as any long one does; dropping it would have the caller's short back-off answer a provider
that asked for a longer pause sooner than one that asked for an hour."""


def parse_retry_after(headers: Mapping[str, str], body: Any, *, now: float | None = None) -> float | None:
    """Seconds to wait before the next call, or None when the response gives no usable hint.

    Reads `Retry-After` (delay-seconds or an HTTP-date), `retry-after-ms`, and `retry_after` in a JSON
    body, top-level or under `"error"`. When several are given the largest one wins: a value that is not
    a number (`inf` and `nan` included), or negative, is ignored; one above a day (even one too large for a
    float) counts as a day (`MAX_SENSIBLE_WAIT`); an HTTP-date in the past means 0.

    An HTTP-date is read against the answer's own `Date` (RFC 9110: the server's clock), where it has one: a
    provider whose clock is minutes off ours would otherwise be asked again at once, or after hours. Without
    one, against `now` (default: this machine's clock).
    """
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    candidates: list[float] = []

    value = lowered.get("retry-after")
    if value is not None:
        seconds = _number(value)
        if seconds is None:
            stamped = _when(lowered.get("date", ""))
            seconds = _http_date(value, stamped if stamped is not None else time.time() if now is None else now)
        _add(candidates, seconds)

    value = lowered.get("retry-after-ms")
    if value is not None:
        ms = _number(value)
        _add(candidates, ms / 1000.0 if ms is not None else None)

    for raw in _body_values(body):
        _add(candidates, _number(raw))

    return max(candidates) if candidates else None


def asked_wait(seconds: float) -> str:
    """A wait `parse_retry_after` read, as said to the user: "90 s", or "a day or more" for one it counted as a day."""
    return "a day or more" if seconds >= MAX_SENSIBLE_WAIT else f"{seconds:,.0f} s"


def _add(candidates: list[float], seconds: float | None) -> None:
    if seconds is not None and not math.isnan(seconds) and seconds >= 0:
        candidates.append(min(float(seconds), MAX_SENSIBLE_WAIT))


def _number(value: Any) -> float | None:
    """A number of seconds; +inf for a number too large for a float; None for anything else, `inf` and `nan`
    (spelt so, or as a float) among it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) < 10**300 else (math.inf if value > 0 else -math.inf)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text or any(c.isalpha() and c not in "eE" for c in text):  # inf, nan, infinity: not numbers
            return None
        try:
            return float(text)  # digits past a float's range: inf, a huge wait
        except ValueError:
            return None
    return None


def _http_date(value: str, now: float) -> float | None:
    when = _when(value)
    return None if when is None else max(0.0, when - now)


def _when(value: str) -> float | None:
    """An HTTP-date as seconds since the epoch; None for anything else."""
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


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
