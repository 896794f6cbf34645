"""The knobs of one run (`RunOptions`) and the bounds every numeric knob must keep, on the command line, in
the Python API and, through the schema, in a manifest: a bad value is a usage error before anything is
recorded or sent."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _Later
from .errors import UsageError
from .terminal import typed

if TYPE_CHECKING:
    import decimal
else:  # imported where a value is read, not at start-up; annotations name its `Decimal` through it
    decimal = _Later("decimal")

# What a run takes where neither its manifest's `run:` nor the command line sets a knob.
RUN_DEFAULTS: Mapping[str, Any] = {
    "concurrency": 4,
    "retries": 3,
    "failure_retries": 0,
    "budget_usd": None,
    "poll_interval": None,
    "timeout": None,
    "max_jobs": 1000,
}
# A job whose provider answers "no such video" (HTTP 404) for this long is taken for gone (`unknown`), by a run
# and by `cancel`: a provider may forget old jobs, and a run must not poll them forever; a shorter lapse is
# polled through, one GET every GONE_AFTER/30 to GONE_AFTER/6 seconds (a job past its expected render time is
# otherwise polled at once, again and again).
GONE_AFTER = 60.0

@dataclass(frozen=True, slots=True)
class RunOptions:
    """Throughput knobs and policies of one run; each may change between runs of the same manifest."""

    concurrency: int | None = None      # jobs at the provider at once (default: manifest run.concurrency)
    budget_usd: float | decimal.Decimal | None = None  # overrides run.budget_usd (a Decimal is counted as written)
    allow_partial: bool = False         # start even when the plan does not fit the budget; stop at it
    force: bool = False                 # re-run jobs that are done (a new paid attempt each)
    force_resume: bool = False          # with force: only the done jobs the last --force run left unsent
    retry_failed: bool = False          # re-run failed, rejected, expired and cancelled jobs
    retry_unknown: bool = False         # re-submit jobs of unknown outcome (may pay twice)
    fail_fast: bool = False             # stop submitting after the first failed job
    leave_in_flight: bool = False       # run though jobs an earlier run sent, gone from the plan, still render
    # the API key now is of the same account as the one jobs in flight were sent with (a key rotated): the run asks
    # about them with it, rather than refusing to start over them (`resume.key_away`)
    same_account: bool = False
    retries: int | None = None          # transient-error retries per request (default: run.retries)
    failure_retries: int | None = None  # new paid attempts per job after its render failed (default: run.failure_retries)
    poll_interval: float | None = None  # fixed poll interval (default: scheduled from expected render time)
    timeout: float | None = None        # per-job deadline: stop waiting, never the job
    request_timeout: float = 30.0       # seconds one HTTP request may take
    report_every: float = 10.0          # seconds at least between report rebuilds during the run (the page
                                        # reloads itself every 20 s: a build in between is never seen)
    handle_signals: bool = False        # Ctrl-C, SIGTERM, SIGHUP (at its default): first stops sending, second detaches
    # with retry_failed or retry_unknown: only the jobs whose key matches one of these globs (`retry --key`), and
    # whose last error has one of these codes (`retry --code`); empty: every job the retry would send
    only_keys: tuple[str, ...] = ()
    only_codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in OPTION_LIMITS:
            if hasattr(self, name):
                check_option(name, getattr(self, name))
        for f in dataclasses.fields(self):
            if f.type in ("bool", bool):
                check_flag(f.name, getattr(self, f.name))
        for name in ("only_keys", "only_codes"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (tuple, list)) or not all(
                    isinstance(v, str) and v.strip() for v in value):
                raise UsageError(f"{name} must be a list of non-empty strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if (self.only_keys or self.only_codes) and not (self.retry_failed or self.retry_unknown):
            raise UsageError("only_keys and only_codes pick the jobs a retry sends again (`gridrun retry --key/--code`):"
                             " they go with retry_failed or retry_unknown")
        if self.force_resume and not self.force:
            # alone it would read as a plain run, which resumes anyway: said, rather than taken as one
            raise UsageError("force_resume goes with force (`gridrun run --force --resume`): it finishes the last "
                             "--force run's re-renders; a plain run already collects what any run left")

    def picks(self, key: str, error: str | None) -> bool:
        """Whether this run's retry sends again the job of `key` whose last error is `error` (`picked`)."""
        return picked(key, error, self.only_keys, self.only_codes)


# A provider's error code in an error as gridrun records it: "CONTENT_POLICY_VIOLATION: The prompt ...", "not
# sent, nothing paid: HTTP 400, INVALID_REQUEST: ...": the first word of capitals (and digits, underscores) of 3
# characters or more followed by a colon.
_CODE = re.compile(r"(?:^|[\s,;(])([A-Z][A-Z0-9_]{2,}):(?:\s|$)")
# A code in lower case (`moderation_blocked`, as an OpenAI-shaped gateway writes them) is told from a plain word by
# its underscore, and from a field a message names by its place: before the request line (`HTTP 400, code: POST
# /v1/videos: ...`), where a provider's code stands, not after it.
_LOWER_CODE = re.compile(r"^[^/]*?(?:^|[\s,;(])([a-z][a-z0-9]*(?:_[a-z0-9]+)+):(?:\s|$)")


def error_code(error: str | None) -> str | None:
    """The provider's code in a job's recorded `error` (`_CODE`; else one in lower case, `_LOWER_CODE`, as it was
    written), None: none found."""
    found = _CODE.search(error or "") or _LOWER_CODE.search(error or "")
    return None if found is None else found.group(1)


# A code as the provider's structured field gives it (`VideoStatus.error_code`): one token, whatever its case, with
# no underscore needed ("moderation", "nsfw"), as no free text there is a sentence to take a word of.
_FIELD_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


def failure_code(field: str | None, message: str | None) -> str | None:
    """The provider's code of a failed render: its structured code `field` where that is one token (a single word in
    lower case too, which `error_code` does not take from free text), else the one `error_code` finds in `message`
    (the failure as gridrun records it)."""
    if field is not None and _FIELD_CODE.fullmatch(field.strip()):
        return field.strip()
    return error_code(message)


def same_code(a: str | None, b: str | None) -> bool:
    """Whether two providers' codes are the same, whatever their case (`--code moderation_blocked`)."""
    return a is not None and b is not None and a.strip().upper() == b.strip().upper()


# What to change, by the provider's code, of a request the provider fails or refuses for what it asks: the same
# request sent again as it is meets the same verdict. A content-moderation verdict is about the prompt (or its
# images), an invalid request about its parameters. A code is read by its whole `_`-separated words, whatever its
# case: one naming a timeout, an unavailable service, a response (`MODERATION_SERVICE_TIMEOUT`,
# `UPSTREAM_INVALID_RESPONSE`) is the provider's trouble, which may pass when sent again, as may any other code (an
# internal error, no capacity, one gridrun does not know).
_PROMPT_FIX = "change the prompt (or its images)"
_REQUEST_FIX = "change the request"
REPEATING_FIX = (({"POLICY", "MODERATION", "MODERATED", "MODERATOR", "SAFETY", "NSFW", "FILTERED", "FLAGGED", "UNSAFE",
                   "CENSORED"}, _PROMPT_FIX),
                 ({"INVALID"}, _REQUEST_FIX))
_MAY_PASS = {"TIMEOUT", "TIMEDOUT", "TIMED", "UNAVAILABLE", "SERVICE", "RESPONSE", "INTERNAL", "OVERLOADED",
             "CAPACITY", "TEMPORARY", "TEMPORARILY", "RETRY"}


def repeating_fix(code: str | None) -> str | None:
    """What to change of a request whose failure carried the provider's `code`, when sending it again as it is would
    fail alike (`REPEATING_FIX`, by whole words, BAD_REQUEST too); None for a code that may pass when sent again
    (`_MAY_PASS`), or none."""
    words = [w for w in re.split(r"[^A-Z0-9]+", (code or "").upper()) if w]
    if not words or _MAY_PASS.intersection(words):
        return None
    if "_BAD_REQUEST_" in f"_{'_'.join(words)}_":
        return _REQUEST_FIX
    return next((fix for known, fix in REPEATING_FIX if known.intersection(words)), None)


# A provider's code that refuses the account rather than the request (a balance spent, a quota or credit used up, a
# billing limit reached), by its whole `_`-separated words, whatever its case: `INSUFFICIENT_BALANCE`,
# `insufficient_quota`, `billing_hard_limit_reached`, `QUOTA_EXCEEDED`, `insufficient_credits`. Every request of the
# account meets it until it is topped up; sent again, none is taken. A code that also names a rate (a per-minute
# quota) or a trouble that may pass (`BILLING_SERVICE_UNAVAILABLE`: `_MAY_PASS`) is not one.
_ACCOUNT_WORDS = {"BALANCE", "QUOTA", "BILLING", "CREDIT", "CREDITS", "PAYMENT", "FUNDS"}
# A quota of a time or of requests at once is a rate limit, waited out: `PER_MINUTE_QUOTA_EXCEEDED`,
# `concurrent_requests_quota_exceeded`, `DAILY_QUOTA_EXCEEDED`.
_RATE_WORDS = {"RATE", "RATELIMIT", "PER", "SECOND", "SECONDS", "SEC", "MINUTE", "MINUTES", "MIN", "HOUR", "HOURLY",
               "DAY", "DAILY", "RPM", "RPS", "TPM", "CONCURRENT", "CONCURRENCY", "PARALLEL", "REQUESTS", "TOKENS",
               "QUEUE"}
# A code about a field of the request that names the account's words (`INVALID_BALANCE_PARAMETER`) is not one.
_FIELD_WORDS = {"INVALID", "PARAMETER", "PARAM", "FIELD", "FORMAT", "MISSING"}


def account_refused(code: str | None) -> bool:
    """Whether the provider's `code` refuses the account, its balance or quota spent (`_ACCOUNT_WORDS`), not the
    request: taken as an HTTP 402 is (INSUFFICIENT_BALANCE)."""
    words = {w for w in re.split(r"[^A-Z0-9]+", (code or "").upper()) if w}
    return bool(_ACCOUNT_WORDS & words) and not (_MAY_PASS & words or _RATE_WORDS & words or _FIELD_WORDS & words)


def refused_again(state: str, error: str | None) -> tuple[str, str] | None:
    """Of a job that ended `state` (failed, rejected) with `error`, what names its refusal and what to change, when
    sending the same request again can only meet it again: a provider's code `repeating_fix` knows (content
    moderation, an invalid request), or a create refused HTTP 422 with no code (a field the provider's schema
    refuses, `body.duration: ...`); None otherwise (a code that may pass, no code, another kind of failure)."""
    code = error_code(error)
    if code is not None:
        fix = repeating_fix(code)
        return None if fix is None else (code, fix)
    if state == "rejected" and re.search(r"\bHTTP 422\b", error or ""):
        return "HTTP 422", _REQUEST_FIX
    return None


def argv_glob(glob: str) -> str:
    """A `--key` glob as the user typed it: argv is in the file-name encoding, so where that is not UTF-8 (ASCII in
    the C locale with Python's UTF-8 mode off) the UTF-8 bytes of a key pasted as `$'look=anim\\xc3\\xa9'` come in
    as escapes (`\\udcc3\\udca9`); they are read as the UTF-8 text they are (`anim\u00e9`). A glob whose bytes are not
    UTF-8, or that the encoding cannot hold (one given to the library), is as given."""
    import os

    try:
        return os.fsencode(glob).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return glob


def picked(key: str, error: str | None, only_keys: tuple[str, ...], only_codes: tuple[str, ...]) -> bool:
    """Whether a retry picking `only_keys` (globs, `argv_glob`) and `only_codes` sends again the job of `key` whose
    last error is `error`: every job when both are empty."""
    import fnmatch

    if only_keys and not any(fnmatch.fnmatchcase(key, argv_glob(glob)) for glob in only_keys):
        return False
    return not only_codes or any(same_code(error_code(error), c) for c in only_codes)


def key_glob(key: str) -> str:
    """The `--key` glob that picks the job of `key` alone: its `*`, `?` and `[` each in a set of its own (`[*]`),
    which the glob reads as that character."""
    import glob

    return glob.escape(key)  # POSIX: no drive part left unescaped


def selection_misses(candidates: Sequence[tuple[str, str | None]], only_keys: Sequence[str],
                     only_codes: Sequence[str], command: str = "retry") -> tuple[str | None, list[str]]:
    """Of a retry's `--key` globs and `--code` codes, what picks nothing among its `candidates` (key, last error: the
    jobs it sends again given no selection, `Diff.retry_candidates`): the refusal when the selection picks no job at
    all, naming what it could pick (their codes, a key), else None; and, when it picks some, one warning for each
    glob or code that picks none of them, which is likely mistyped. `command`: the retry it is of (`retry`, `retry
    --unknown`), as they name it."""
    from collections import Counter

    picks = [(key, error) for key, error in candidates if picked(key, error, tuple(only_keys), tuple(only_codes))]
    only_keys = [argv_glob(g) for g in only_keys]  # as `picked` reads them
    given = " ".join([*(f"--key {typed(g)}" for g in only_keys), *(f"--code {c}" for c in only_codes)])
    # the example: a job the same request sent again is not sure to be refused again, where there is one
    example = next((key for key, error in candidates
                    if refused_again("failed", error) is None and refused_again("rejected", error) is None),
                   candidates[0][0] if candidates else "")
    if not picks:
        if not candidates:
            return f"{given} picks no job: there is none that `gridrun {command}` sends again", []
        codes = Counter(error_code(error) or "no code" for _, error in candidates)
        listed = ", ".join(f"{code} ×{n:,}" if n > 1 else code for code, n in codes.most_common())
        n = len(candidates)
        return (f"{given} picks none of the {n:,} {'job' if n == 1 else 'jobs'} `gridrun {command}` sends again "
                f"(e.g. --key {typed(key_glob(example))}; their codes: {listed}): nothing sent, no run recorded"), []
    import fnmatch

    said = [f"--key {typed(g)} matches none of the jobs `gridrun {command}` sends again "
            f"(e.g. --key {typed(key_glob(example))})"
            for g in only_keys if not any(fnmatch.fnmatchcase(key, g) for key, _ in candidates)]
    codes_had = {error_code(error) for _, error in candidates}
    said += [f"--code {c} is the code of none of the jobs `gridrun {command}` sends again (their codes: "
             f"{', '.join(sorted(str(x) for x in codes_had if x)) or 'none'})"
             for c in only_codes if not any(same_code(c, x) for x in codes_had)]
    return None, said


def run_options(options: Any) -> RunOptions:
    """`options` as RunOptions: itself, or made from a mapping of its fields (the Python API's `options`).

    :raises UsageError: not a RunOptions nor a mapping, a key that is not a field (named with the fields), or a
        bad value.
    """
    if isinstance(options, RunOptions):
        return options
    if not isinstance(options, Mapping):
        raise UsageError(f"options must be a RunOptions or a mapping of its fields, got {type(options).__name__}")
    known = [f.name for f in dataclasses.fields(RunOptions)]
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"options: unknown option {key!r}{hint} "
                             f"(the options: {', '.join(known)})")
    return RunOptions(**options)


# The numeric knobs of a run, as the manifest's schema has them: (integer?, least value, least excluded?,
# most value or None). The most keep a slip (1e20 retries, a poll every 1e308 s) from making a run that
# never ends.
OPTION_LIMITS: dict[str, tuple[bool, float, bool, float | None]] = {
    "concurrency": (True, 1, False, 10_000),
    "retries": (True, 0, False, 100),
    "failure_retries": (True, 0, False, 100),
    "max_jobs": (True, 1, False, 10_000_000),
    "budget_usd": (False, 0, False, 1_000_000_000),
    "poll_interval": (False, 0, True, 3600),
    "timeout": (False, 0, True, None),
    "request_timeout": (False, 0, True, 3600),
    "report_every": (False, 0, False, None),
    "every": (False, 0.2, False, 3600),  # `gridrun status --watch --every`: 0.2 s, the display's own pace
}


# The least value a command-line flag takes, above the knob's own least: a request given a few milliseconds can
# never be answered over a network, and the create (the paid one) may slip through while the polls and the
# download of its video cannot. The Python API keeps the knob's own bounds (tests against an in-process fake).
FLAG_FLOORS: dict[str, float] = {"request_timeout": 1.0}


# The knobs that take a `decimal.Decimal` too, counted as written: money (`plan.budget_micros`). The others are
# seconds, which the run adds to floats.
DECIMAL_KNOBS = frozenset({"budget_usd"})
# A number as a manifest writes one in decimal (YAML 1.2's float form, an integer included): ASCII digits, a point,
# an exponent; neither `4_20` nor digits of other scripts, which Python's `float()` takes.
DECIMAL_TEXT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")


def decimal_of(text: str) -> decimal.Decimal | None:
    """`text` as a Decimal, its digits exactly as written, when it is a number in the manifest's decimal form
    (`DECIMAL_TEXT`); None otherwise."""
    from decimal import Decimal

    return Decimal(text) if DECIMAL_TEXT.fullmatch(text) else None


def flag_problem(name: str, value: Any) -> str | None:
    """`option_problem`, or `value` below the flag's floor (FLAG_FLOORS), e.g. "must be at least 1 (seconds)"."""
    problem = option_problem(name, value)
    floor = FLAG_FLOORS.get(name)
    if problem is None and floor is not None and value is not None and value < floor:
        return f"must be at least {floor:g} (seconds), got {value!r}"
    return problem


def option_problem(name: str, value: Any) -> str | None:
    """What is wrong with `value` as `name` (see OPTION_LIMITS), e.g. "must be an integer at least 1, got 0";
    None when it is usable (None always is)."""
    if value is None:
        return None
    from decimal import Decimal

    integer, least, excluded, most = OPTION_LIMITS[name]
    types = (int, float, Decimal) if name in DECIMAL_KNOBS else (int, float)
    if not integer and (not isinstance(value, types) or isinstance(value, bool)):
        named = "int, float or Decimal" if name in DECIMAL_KNOBS else "int or float"
        return f"must be a number ({named}), got {type(value).__name__} {value!r}"
    usable = (type(value) is int if integer else
              value.is_finite() if isinstance(value, Decimal) else math.isfinite(value))
    kind = "an integer" if integer else "a finite number"
    shown = str(value) if isinstance(value, Decimal) else repr(value)  # as written (`--budget`), not Decimal('-1')
    if usable and most is not None and value > most:
        return f"must be {kind} at most {most:,}, got {shown}"
    if usable and (value > least or value == least and not excluded):
        return None
    return f"must be {kind} {'above' if excluded else 'at least'} {least:g}, got {shown}"


def check_flag(name: str, value: Any) -> None:
    """A flag of the API (`RunOptions.force`, `cancel`'s `void_unsent`, ...) is True or False: given as a string
    ("no", "false", read from a config file) it would be true, and for `force` or `void_unsent` that costs money.

    :raises UsageError: `value` is not a bool.
    """
    if type(value) is not bool:
        raise UsageError(f"{name} must be True or False, got {value!r}")


def check_option(name: str, value: Any) -> None:
    """:raises UsageError: `value` is not a usable `name` (see OPTION_LIMITS)."""
    problem = option_problem(name, value)
    if problem is not None:
        raise UsageError(f"{name} {problem}")
