"""The simulator's knobs: lifecycle timing, limits, idempotency, URL lifetime and fault injection.

A `SimConfig` is frozen; the running simulator swaps it for a patched copy (`POST /_sim/config`).
Every fault is a `FaultRule`; the convenience rates (`error_rate`, `reset_rate`, ...) become rules too.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from ..textforms import in_seconds

ROUTES = ("create", "get", "list", "delete", "content", "file", "requests", "balance", "dry_run")
"""Route names used by fault rules and by the request counters. "*" in a rule matches all of them."""

FAULTS = {
    "rate_limited": "429 RATE_LIMITED with a retry hint in the style of `retry_style`",
    "server_error": "5xx: `status` (500, 502 ALL_PROVIDERS_EXHAUSTED, 503, 504), else one of `error_statuses`; with "
                    "`retry_after`, a Retry-After of that many seconds (a service down for maintenance)",
    "reset_before": "the connection drops before the request is handled (a create makes no video)",
    "reset_after": "the request is handled, then the connection drops before any response (a create is paid)",
    "reset": "reset_before or reset_after, by a seeded coin",
    "held": "create only: the connection drops before any answer while a gateway holds the request, which reaches "
            "the provider (is made and paid, or refused) only when released (`POST /_sim/release`)",
    "slow": "the response headers are delayed by `delay` seconds",
    "stall_body": "headers and half the body are sent, then the rest after `delay` seconds",
    "auth_failed": "401 AUTHENTICATION_FAILED",
    "insufficient_balance": "402 INSUFFICIENT_BALANCE",
    "model_disabled": "create only: 404 MODEL_DISABLED, as for a model the provider has switched off",
    "not_found": "get, delete, balance and requests only: 404 NOT_FOUND, as for a video the provider does not know "
                 "(or no longer does), or for a route (the balance, a video's DELETE, the request log) a gateway or "
                 "an OpenAI-shaped API does not have",
    "not_allowed": "delete only: 405 METHOD_NOT_ALLOWED, or `status` (501 NOT_IMPLEMENTED), as from a provider or "
                   "gateway that does not take cancel requests",
    "malformed_json": "the request is handled, then the JSON response body is cut short",
    "unknown_status": "video objects in the response carry status `value` (default 'processing')",
    "job_failure": "create only: the new video ends failed with error code `code`",
    "expired": "downloads answer `status` (default the `expired_status` knob) as if the URL had expired",
    "truncated": "downloads send half the body under the full Content-Length, then close",
    "reset_mid_body": "downloads send half the body, then the connection is reset",
    "wrong_content_type": "downloads are labelled text/html",
    "corrupt": "downloads have the right length but scrambled bytes",
    "no_ranges": "downloads ignore `Range` and `If-Range`: the whole body, 200, as from a server that sends no ranges",
}

_ALIASES = {"reset_after_create": "reset_after", "reset_before_create": "reset_before"}
RETRY_STYLES = ("seconds", "date", "ms", "body", "all", "none")

# The knobs' upper bounds. Each is far past any test of a run, and keeps the simulator's arithmetic finite
# (a balance or cost in micro-dollars, a clock plus a render time or a URL's life) where a figure such as 1e308
# passed as finite and overflowed mid-run, or made a run wait for ever.
DAY = 86_400.0
"""The longest time a knob gives, in seconds: a render, a delay, a Retry-After, a URL's or a key's life."""
MAX_FACTOR = 1e6
"""The largest multiplier (`time_scale`, `cost_factor`: 1000000 reports a cost in micro-dollars) or rate
(`rate_limit`, requests per second)."""
MAX_USD = 1e9
"""The largest balance, in USD."""
MAX_CLIP_BYTES = 1 << 30
"""The largest padded clip (`clip_bytes`): a GiB, held in memory per clip cached."""
MAX_COUNT = 1_000_000
"""The largest count: videos rendering at once, a rate-limit burst, clips cached or drawn from, a rule's times."""
MAX_CALL = 1_000_000_000
"""The largest call number a fault rule's `nth` names."""
MAX_FPS = 240
MAX_SIDE = 8192
"""The largest side of a clip's frame, in pixels (a render's is smaller)."""
SEED_RANGE = (-(2**63), 2**63 - 1)
"""A seed fits 64 bits, as the programs reading the simulator's world store whole numbers."""
HTTP_STATUSES = (100, 599)


class ConfigError(ValueError):
    """A knob has an unknown name or an unusable value, or knobs a combination past a bound; the message names
    them.

    :ivar knobs: the knobs at fault together (`render_time` and `time_scale`, whose product is bounded); empty
        for a knob at fault alone.
    """

    def __init__(self, message: str, *, knobs: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.knobs = knobs


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Inject `fault` into calls of `route`: each call with probability `p`, and/or the `nth` calls (1-based). A
    rule read from knobs (`from_dict`: a manifest's `sim.script`, a knobs file) needs one of them: without, it
    would never fire.

    :ivar times: fire at most this many times (None: no limit).
    :ivar status: HTTP status for server_error, expired and not_allowed.
    :ivar delay: seconds, for slow and stall_body.
    :ivar retry_after: seconds to advertise, for rate_limited (else the config's) and server_error (else none).
    :ivar retry_style: seconds | date | ms | body | all | none, for rate_limited (default: the config's).
    :ivar code: error code, for job_failure.
    :ivar value: the status value, for unknown_status.
    """

    fault: str
    route: str = "*"
    p: float = 0.0
    nth: tuple[int, ...] = ()
    times: int | None = None
    status: int | None = None
    delay: float | None = None
    retry_after: float | None = None
    retry_style: str | None = None
    code: str | None = None
    value: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from a mapping such as ``{"route": "create", "nth": 3, "fault": "reset_after_create"}``.

        :raises ConfigError: an unknown key, fault or route, or a bad value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"script: unknown key {unknown[0]!r} in fault rule (known: {', '.join(sorted(names))})")
        if "fault" not in data:
            raise ConfigError("script: a fault rule needs a 'fault'")
        values = dict(data)
        nth = values.get("nth", ())
        try:
            values["nth"] = tuple(int(n) for n in (nth if isinstance(nth, (list, tuple)) else [nth]))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"script: nth must be call numbers (whole numbers from 1), got {nth!r}") from exc
        values["fault"] = _ALIASES.get(str(values["fault"]), str(values["fault"]))
        rule = cls(**values)
        rule.validate(p_given="p" in data)
        return rule

    def validate(self, *, p_given: bool = False) -> None:
        """:raises ConfigError: the rule names an unknown fault or route, or has a bad value. `p_given`: the rule
        wrote its p (a p of 0 is told as such, not as a p left out)."""
        if self.fault not in FAULTS:
            raise ConfigError(f"script: unknown fault {self.fault!r} (known: {', '.join(sorted(FAULTS))})")
        if self.route != "*" and self.route not in ROUTES:
            raise ConfigError(f"script: unknown route {self.route!r} (known: *, {', '.join(ROUTES)})")
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"script: p must be between 0 and 1, got {self.p!r}")
        if self.retry_style is not None and self.retry_style not in RETRY_STYLES:
            raise ConfigError(f"script: retry_style must be one of {', '.join(RETRY_STYLES)}, got {self.retry_style!r}")
        for name in ("delay", "retry_after"):
            value = getattr(self, name)
            if value is not None and not _non_negative(value):
                raise ConfigError(f"script: {name} must be a finite number ≥ 0 or null, got {_shown(value)}")
            if value is not None and value > DAY:
                raise ConfigError(f"script: {name} must be at most {DAY:,.0f} seconds (a day), got {_shown(value)}")
        for name in ("times", "status"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"script: {name} must be a whole number ≥ 0 or null, got {_shown(value)}")
        for name in ("code", "value"):
            _printable(name, getattr(self, name), "script: ")
        if self.times is not None and self.times > MAX_COUNT:
            raise ConfigError(f"script: times must be at most {MAX_COUNT:,}, got {_shown(self.times)}")
        if self.status is not None and not HTTP_STATUSES[0] <= self.status <= HTTP_STATUSES[1]:
            raise ConfigError(f"script: status must be an HTTP status (100 to 599), got {_shown(self.status)}")
        if any(not 1 <= n <= MAX_CALL for n in self.nth):
            raise ConfigError(f"script: nth must be call numbers from 1 to {MAX_CALL:,}, "
                              f"got {', '.join(map(_shown, self.nth))}")
        if not self.p and not self.nth and p_given:  # `p: 0`, to switch the rule off for a moment
            raise ConfigError(f"script: the {self.fault} rule has p 0 and no nth (the calls it hits), so it never "
                              "fires: give p above 0 or nth, or leave the rule out")
        if not self.p and not self.nth:  # it would be taken and never fire: a test of nothing
            raise ConfigError(f"script: the {self.fault} rule needs p (a probability above 0) or nth (the calls "
                              "it hits): with neither it never fires")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fault": self.fault, "route": self.route}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name not in out and value != f.default:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Every knob of the simulator. Times are seconds; rates are probabilities per call unless said otherwise."""

    seed: int = 0
    """Seeds render times, failures, probabilistic faults, ids and the pictures."""
    api_key: str | None = None
    """When set, API calls need `Authorization: Bearer <api_key>`; when None, any or no key is accepted."""

    render_time: float = 2.0
    """Mean render time of one video, before `time_scale`."""
    jitter: float = 0.25
    """Render times are spread uniformly over render_time × (1 ± jitter)."""
    time_scale: float = 1.0
    """Multiplies every render time (0.01 makes a 60 s render take 0.6 s)."""
    concurrency: int = 8
    """Videos rendering at once; the overflow stays queued, first in first out."""
    failure_rate: float = 0.0
    """Fraction of videos (seeded) that end failed."""
    failure_code: str = "CONTENT_POLICY_VIOLATION"
    """error.code of failed videos: printable text, no control or invisible character (an ESC would act on the
    terminal of whoever reads the error)."""

    rate_limit: float = 0.0
    """API requests per second (token bucket, shared by all API routes); 0 = unlimited."""
    rate_burst: int = 0
    """Bucket size; 0 = max(1, ceil(rate_limit))."""
    retry_after_style: str = "seconds"
    """How 429s say when to retry: seconds | date (HTTP-date) | ms (retry-after-ms) | body (JSON retry_after) | all | none."""
    retry_after: float = 1.0
    """Seconds advertised by injected 429s."""
    cost_factor: float = 1.0
    """Multiplies the `metadata.cost` reported for a completed video (and its request log entry's `cost`), not
    what the account owes: 0 reports a free render, 1000000 a figure in micro-dollars."""
    cancel_charge: float = 0.0
    """Fraction of its price a video cancelled while rendering is charged (and reports as `metadata.cost`, times
    `cost_factor`), as a provider that promises no refund may: 0 charges nothing, 1 the whole price. A video
    cancelled while queued is never charged."""
    balance: float | None = None
    """Account balance in USD; creates that would overdraw it get 402 INSUFFICIENT_BALANCE. None = unlimited."""

    honour_idempotency: bool = True
    """When False, `idempotency_key` is ignored: every create makes (and bills) a new video."""
    idempotency_conflict: str = "original"
    """Same key, different body: "original" returns the first video, "error" answers 409."""
    idempotency_window: float | None = None
    """Seconds a key is remembered after the video it made was created; a later create with it makes (and bills)
    a new video, remembered in turn. None: keys are never forgotten."""

    url_ttl: float = 3600.0
    """Seconds an output URL stays valid after it is issued (0: expired at once)."""
    expired_status: int = 403
    """Status of an expired output URL: 403, 404 or 410."""
    refresh_urls: bool = True
    """A GET of a completed video whose URL has expired issues a fresh URL."""
    omit_output: bool = False
    """Completed video objects carry no `output` (the OpenAI shape): the bytes are only at
    `GET /videos/{id}/content`, until the video's `expires_at`, as an output URL."""

    error_rate: float = 0.0
    """Probability of a 5xx on any route."""
    error_statuses: tuple[int, ...] = (500, 502, 503, 504)
    reset_rate: float = 0.0
    """Probability of a connection reset on any route (before or after handling, by a coin)."""
    rate_limited_rate: float = 0.0
    """Probability of an injected 429 on any API route."""
    slow_rate: float = 0.0
    """Probability of a response whose headers are delayed by `slow_delay`."""
    slow_delay: float = 5.0
    script: tuple[FaultRule, ...] = ()
    """Further fault rules, by route, probability and call number."""

    full_size: bool = False
    """Encode clips at the render size instead of scaled down to `max_side`."""
    max_side: int = 320
    fps: int = 8
    cache_size: int = 256
    """Encoded clips kept in memory."""
    clip_bytes: int = 0
    """0: clips as encoded. N > 0: each clip's MP4 is padded with a trailing `free` box to at least N bytes (a
    large video, for tests and benches of downloads cut short and resumed)."""
    clip_variants: int = 0
    """0: every video gets its own picture. N > 0: pictures are drawn from N variants (chosen by prompt and
    seed), so a benchmark of thousands of jobs encodes N clips, not thousands."""

    def __post_init__(self) -> None:
        # Accept plain lists and mappings too (a manifest's `sim:` block, a knobs file), as frozen tuples.
        script = tuple(r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in self.script)
        object.__setattr__(self, "script", script)
        object.__setattr__(self, "error_statuses", _statuses(self.error_statuses))
        for name in ("failure_rate", "error_rate", "reset_rate", "rate_limited_rate", "slow_rate", "jitter",
                     "cancel_charge"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {value!r}")
        for name in ("render_time", "time_scale", "rate_limit", "url_ttl", "slow_delay", "retry_after", "cost_factor"):
            if not _non_negative(getattr(self, name)):
                raise ConfigError(f"{name} must be a finite number ≥ 0, got {_shown(getattr(self, name))}")
        if self.balance is not None and not _non_negative(self.balance):
            raise ConfigError(f"balance must be a finite number of USD ≥ 0 or null, got {_shown(self.balance)}")
        self._check_bounds()
        _printable("failure_code", self.failure_code)
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise ConfigError("api_key must be a string or null")
        if self.rate_burst < 0 or self.cache_size < 1:
            raise ConfigError("rate_burst must not be negative and cache_size must be at least 1")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {self.concurrency!r}")
        if self.retry_after_style not in RETRY_STYLES:
            raise ConfigError(f"retry_after_style must be one of {', '.join(RETRY_STYLES)}, got {self.retry_after_style!r}")
        if self.idempotency_conflict not in ("original", "error"):
            raise ConfigError(f"idempotency_conflict must be 'original' or 'error', got {self.idempotency_conflict!r}")
        if self.expired_status not in (403, 404, 410):
            raise ConfigError(f"expired_status must be 403, 404 or 410, got {self.expired_status!r}")
        window = self.idempotency_window
        if window is not None and (not _non_negative(window) or window == 0):
            raise ConfigError(
                f"idempotency_window must be a finite number of seconds > 0 or null, got {_shown(window)}")
        if window is not None and window > DAY:
            raise ConfigError(f"idempotency_window must be at most {DAY:,.0f} seconds (a day; null: keys are never "
                              f"forgotten), got {_shown(window)}")
        if self.clip_variants < 0:
            raise ConfigError(f"clip_variants must not be negative, got {self.clip_variants!r}")
        if self.clip_bytes < 0:
            raise ConfigError(f"clip_bytes must not be negative, got {self.clip_bytes!r}")
        if self.max_side < 16 or self.fps < 1:
            raise ConfigError("max_side must be at least 16 and fps at least 1")

    def _check_bounds(self) -> None:
        """:raises ConfigError: a knob's figure past its upper bound (`DAY`, `MAX_FACTOR`, ...): finite, yet
        one the simulator's arithmetic overflows (1e308 USD in micro-dollars) or a run waits on for ever; or
        render_time × time_scale past a day."""
        bounds: list[tuple[str, float, str]] = [
            *((name, DAY, "seconds (a day)") for name in ("render_time", "url_ttl", "slow_delay", "retry_after")),
            *((name, MAX_FACTOR, "") for name in ("time_scale", "cost_factor", "rate_limit")),
            ("balance", MAX_USD, "USD"),
            *((name, MAX_COUNT, "") for name in ("concurrency", "rate_burst", "cache_size", "clip_variants")),
            ("max_side", MAX_SIDE, "pixels"), ("fps", MAX_FPS, ""), ("clip_bytes", MAX_CLIP_BYTES, "bytes"),
        ]
        for name, top, unit in bounds:
            value = getattr(self, name)
            if value is not None and value > top:
                suffix = f" {unit}" if unit else ""
                raise ConfigError(f"{name} must be at most {top:,.0f}{suffix}, got {_shown(value)}")
        if not SEED_RANGE[0] <= self.seed <= SEED_RANGE[1]:
            raise ConfigError(f"seed must be a whole number from -2**63 to 2**63 - 1, got {_shown(self.seed)}")
        # Each within its bound, the two still multiply into a render that a run waits on for ever.
        scaled = self.render_time * self.time_scale
        if scaled > DAY:
            raise ConfigError(f"render_time × time_scale, a render's mean time, must be at most {DAY:,.0f} seconds "
                              f"(a day), got {_shown(self.render_time)} × {_shown(self.time_scale)} = {scaled:,.0f} "
                              "seconds: lower one of them", knobs=("render_time", "time_scale"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: SimConfig | None = None) -> SimConfig:
        """A config from a mapping of knobs (a JSON knobs file), over `base` or the defaults.

        :raises ConfigError: an unknown knob or a bad value.
        """
        base = base or cls()
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            close = difflib.get_close_matches(unknown[0], names, n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown knob {unknown[0]!r}{suggestion} (known: {', '.join(sorted(names))})")
        values: dict[str, Any] = {}
        for key, value in data.items():
            values[key] = _typed(key, value, getattr(base, key))
        try:
            return dataclasses.replace(base, **values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """The knobs as JSON-ready values (`from_dict` reads them back)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "script":
                value = [r.to_dict() for r in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @property
    def balance_micros(self) -> int | None:
        """`balance` in micro-USD, read from its decimal form: $2.05 is 2,050,000, where `2.05 * 1_000_000` is
        2049999.9999999998 and cut to a whole number owes one micro-dollar less. None: unlimited."""
        return None if self.balance is None else round(Decimal(str(self.balance)) * 1_000_000)

    def rules(self) -> tuple[FaultRule, ...]:
        """All fault rules: the convenience rates first, then the script."""
        rates = (
            FaultRule("reset", p=self.reset_rate),
            FaultRule("rate_limited", p=self.rate_limited_rate),
            FaultRule("server_error", p=self.error_rate),
            FaultRule("slow", p=self.slow_rate, delay=self.slow_delay),
        )
        return tuple(r for r in rates if r.p > 0) + self.script


def _non_negative(value: Any) -> bool:
    """Whether `value` is a finite number ≥ 0: NaN compares false to every bound and infinity overflows the
    integer arithmetic of costs and clocks, so both are refused with the negatives."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return value >= 0 and (isinstance(value, int) or math.isfinite(value))  # an int of any size is finite


def _shown(value: Any) -> str:
    """`value` as a message shows it: a whole number of more than 20 digits by its size, not its digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"a number of {len(str(abs(value)))} digits"
    return repr(value)


def _statuses(values: Any) -> tuple[int, ...]:
    """`error_statuses` as HTTP statuses, one at least (a 5xx is drawn from them).

    :raises ConfigError: it is empty, or holds what is no HTTP status.
    """
    try:
        statuses = tuple(values)
    except TypeError:
        statuses = ()
    if not statuses or not all(isinstance(s, int) and not isinstance(s, bool) for s in statuses) \
            or not all(HTTP_STATUSES[0] <= s <= HTTP_STATUSES[1] for s in statuses):
        raise ConfigError(f"error_statuses must be a list of HTTP statuses (100 to 599), got {_shown(values)}")
    return statuses


# The categories of characters a failure code may not hold: controls (ESC, CR, C1), invisible format characters
# (U+202E reversing the line, a zero width space) and the line and paragraph separators
_UNPRINTED = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _printable(name: str, value: Any, where: str = "") -> None:
    """:raises ConfigError: `value`, a text the simulator gives back as a failure's code or a job's status, holds a
        control or invisible character (`_UNPRINTED`)."""
    if isinstance(value, str) and any(unicodedata.category(ch) in _UNPRINTED for ch in value):
        raise ConfigError(f"{where}{name} must not hold a control or invisible character, got {value!r}")


# The knobs that are times, in seconds: a value written with a unit ("2s") is told so
_IN_SECONDS = frozenset({"render_time", "retry_after", "idempotency_window", "url_ttl"})


def _typed(key: str, value: Any, current: Any) -> Any:
    if key == "script":
        if value is not None and not isinstance(value, (list, tuple)):
            raise ConfigError(f"script must be a list of fault rules, got {value!r}")
        return tuple(value or ())
    if value is None or isinstance(current, tuple) or current is None:
        return value
    kind = type(current)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        try:
            return kind(value)
        except OverflowError as exc:  # a whole number past a float's range
            raise ConfigError(f"{key} must be a finite number, got {_shown(value)}") from exc
        except (TypeError, ValueError) as exc:
            unit = in_seconds(value) if key in _IN_SECONDS else ""
            raise ConfigError(f"{key} must be a number, got {value!r}{unit}") from exc
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    return value
