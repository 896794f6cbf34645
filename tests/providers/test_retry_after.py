from __future__ import annotations

from email.utils import format_datetime
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from runner.providers import parse_retry_after
from runner.providers.retry_after import MAX_SENSIBLE_WAIT, asked_wait

NOW = 1_800_000_000.0


def http_date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, tz=timezone.utc), usegmt=True)


CASES: list[tuple[str, dict[str, str], Any, float | None]] = [
    ("nothing", {}, None, None),
    ("seconds", {"Retry-After": "7"}, None, 7.0),
    ("seconds, lower-case name", {"retry-after": "3"}, None, 3.0),
    ("fractional seconds", {"Retry-After": "1.5"}, None, 1.5),
    ("zero", {"Retry-After": "0"}, None, 0.0),
    ("padded", {"Retry-After": "  12 "}, None, 12.0),
    ("http date in the future", {"Retry-After": http_date(30)}, None, 30.0),
    ("http date in the past", {"Retry-After": http_date(-30)}, None, 0.0),
    ("milliseconds", {"retry-after-ms": "2500"}, None, 2.5),
    ("milliseconds, mixed case", {"Retry-After-Ms": "250"}, None, 0.25),
    ("body top-level", {}, {"retry_after": 5}, 5.0),
    ("body top-level string", {}, {"retry_after": "4"}, 4.0),
    ("body nested under error", {}, {"error": {"message": "slow down", "retry_after": 9}}, 9.0),
    ("body as JSON text", {}, '{"detail": "throttled", "status": 429, "retry_after": 5}', 5.0),
    ("body as bytes", {}, b'{"retry_after": 6}', 6.0),
    ("garbage header", {"Retry-After": "soon"}, None, None),
    ("garbage ms", {"retry-after-ms": "lots"}, None, None),
    ("garbage body value", {}, {"retry_after": "later"}, None),
    ("boolean body value", {}, {"retry_after": True}, None),
    ("body not JSON", {}, "<html>429</html>", None),
    ("body a list", {}, [1, 2], None),
    ("negative seconds", {"Retry-After": "-5"}, None, None),
    ("negative ms", {"retry-after-ms": "-100"}, None, None),
    ("negative body", {}, {"retry_after": -1}, None),
    ("not finite", {"Retry-After": "inf"}, {"retry_after": "nan"}, None),
    ("not finite, spelt out", {"Retry-After": "Infinity"}, {"retry_after": float("inf")}, None),
    # a wait above a day counts as a day (past the longest pause honoured), never as none
    ("absurdly large", {"Retry-After": "1e12"}, None, MAX_SENSIBLE_WAIT),
    ("digits past a float", {"Retry-After": "9" * 400}, None, MAX_SENSIBLE_WAIT),
    ("absurdly large ms", {"retry-after-ms": "100000000000"}, None, MAX_SENSIBLE_WAIT),
    ("absurdly large body", {}, {"error": {"retry_after": 10**400}}, MAX_SENSIBLE_WAIT),
    ("a date years ahead", {"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"}, None, MAX_SENSIBLE_WAIT),
    ("several: the largest wins", {"Retry-After": "2", "retry-after-ms": "3500"}, {"retry_after": 1}, 3.5),
    ("several: garbage ignored", {"Retry-After": "soon", "retry-after-ms": "1500"}, {"error": {"retry_after": 4}}, 4.0),
    ("several: date and seconds", {"Retry-After": http_date(10), "retry-after-ms": "20000"}, None, 20.0),
    ("several: body top and nested", {}, {"retry_after": 2, "error": {"retry_after": 8}}, 8.0),
]


@pytest.mark.parametrize(("headers", "body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_retry_after_table(headers: dict[str, str], body: Any, expected: float | None) -> None:
    got = parse_retry_after(headers, body, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got is not None and got >= 0
        assert got == pytest.approx(expected, abs=1e-6)


def test_parse_retry_after_reads_httpx_headers() -> None:
    headers = httpx.Headers([("Retry-After", "4"), ("Retry-After-Ms", "4500")])
    assert parse_retry_after(headers, None, now=NOW) == 4.5


def test_parse_retry_after_uses_the_clock_when_now_is_omitted() -> None:
    future = format_datetime(datetime.now(timezone.utc).replace(microsecond=0), usegmt=True)
    got = parse_retry_after({"Retry-After": future}, None)
    assert got is not None and 0 <= got <= 1


def test_a_wait_counted_as_a_day_is_said_to_be_a_day_or_more() -> None:
    assert asked_wait(90) == "90 s"
    assert asked_wait(parse_retry_after({"Retry-After": "1000000000000"}, None, now=NOW) or 0) == "a day or more"
