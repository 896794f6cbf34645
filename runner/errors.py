"""Every error gridrun raises on purpose.

    GridrunError                 str() is what the user reads; exit_code is what the CLI returns
    ├── ManifestError            a manifest (or a file it names) is invalid; points at file:line:column
    │   ├── MatrixError          the matrix cannot be expanded (GitHub would reject it, or an extension is misused)
    │   ├── TemplateError        a template does not compile or render (undefined name, cycle in vars)
    │   └── CapabilityError      a request parameter is not accepted by the provider's model
    ├── ManifestErrors           several ManifestErrors found at once
    ├── UsageError               a command line that cannot be carried out
    ├── BudgetError              the plan or the run would exceed the budget
    ├── BalanceError             the account's balance, as the provider says it, is below what the run would send
    ├── EndpointError            the base URL answers with a web page, not the provider's API
    ├── StateError               the state store is unusable or a job moved along an illegal transition
    │   ├── NotRecordedError     the state holds nothing of what was asked (no state, no such run)
    │   │   ├── RunStartingError nothing recorded yet, but a run is starting
    │   │   └── NeverRanError    `cancel` of a manifest no run of which was ever recorded: nothing to cancel
    │   ├── StateWriteError      a run could not write its state (a full disk, an I/O error) and stopped
    │   └── LockError            another runner holds the state lock, or another run the output folder's
    └── ProviderError            a provider call went wrong; subclasses say what the executor must do
        ├── NeedsKeyError        the provider's API key is not set
        ├── RetryableError       try the same call again after `retry_after` seconds (or a backoff)
        │   ├── RateLimitedError 429
        │   ├── ServerError      5xx, or a malformed response
        │   └── TransportError   the connection failed
        │       └── ConnectError the request provably never reached the server
        ├── RejectedError        4xx before the provider accepted the job: nothing was paid
        ├── OutcomeUnknownError  a create call may have reached the provider; whether it was paid is not known
        ├── ExpiredError         the output URL is gone
        └── DownloadError        the download was truncated, of the wrong type or corrupt
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence


class GridrunError(Exception):
    """Every error gridrun raises on purpose; str() is what the user reads."""

    exit_code = 1

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its text and fields, made again without calling `__init__` (whose keyword arguments, a
        `ManifestError`'s `file`, the default pickling would leave out): an error raised in a worker process (a
        `multiprocessing` pool's) reaches the parent whole."""
        return _made_again, (type(self), self.args, self.__dict__)


def _made_again(cls: type[BaseException], args: tuple[object, ...], fields: dict[str, object]) -> BaseException:
    """The error `GridrunError.__reduce__` pickled: of class `cls`, with `args` (its text) and its `fields`."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(fields)
    return error


class ManifestError(GridrunError):
    """A manifest, or a file it names, is invalid. Names file, line, column and field path."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: Path | str,
        line: int = 0,
        column: int = 0,
        field: str = "",
    ) -> None:
        self.message = message
        self.file = Path(file)
        self.line = line
        self.column = column
        self.field = field
        # a name's byte that is not UTF-8 (a lone surrogate to Python) shown as U+FFFD: no stream can write it
        name = re.sub("[\ud800-\udfff]", "\ufffd", str(self.file))
        where = f"{name}:{line}:{column}" if line else name
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class MatrixError(ManifestError):
    """The matrix cannot be expanded: GitHub would reject it, or an extension is misused."""


class TemplateError(ManifestError):
    """A template does not compile or render: an undefined name, a cycle among vars."""

    row_line: str | None = None  # "from rows.csv:4": the data file's row a job's error is of, where it is one row's


class CapabilityError(ManifestError):
    """A request parameter is not accepted by the provider's model."""


class ManifestErrors(GridrunError):
    """Several manifest errors, found at once; str() lists them one per line."""

    exit_code = 2

    def __init__(self, errors: Sequence[ManifestError], *, not_listed: int = 0) -> None:
        """`not_listed`: how many more errors were found than `errors` lists (the first of them, in file order)."""
        self.errors = list(errors)
        self.not_listed = not_listed
        lines = [str(e) for e in self.errors]
        if not_listed:
            lines.append(f"... and {not_listed:,} more errors")
        super().__init__("\n".join(lines))

    @property
    def total(self) -> int:
        """How many errors were found, those listed and those not."""
        return len(self.errors) + self.not_listed


class UsageError(GridrunError):
    """A command line that cannot be carried out."""

    exit_code = 2


class BudgetError(GridrunError):
    """The plan or the run would exceed the budget.

    :ivar cost_micros: what the jobs to send, with those an earlier run left in flight, would cost (micro-USD, the
        plan's estimate); None where not said.
    :ivar budget_micros: the budget, in micro-USD.
    :ivar jobs: how many jobs the run would send; `in_flight`, how many it would follow.
    :ivar jobs_fit: how many of the jobs to send fit the budget, in order, beside those in flight: what
        `allow_partial` would send.
    """

    exit_code = 3

    def __init__(self, message: str, *, cost_micros: int | None = None, budget_micros: int | None = None,
                 jobs: int | None = None, in_flight: int | None = None, jobs_fit: int | None = None) -> None:
        super().__init__(message)
        self.cost_micros = cost_micros
        self.budget_micros = budget_micros
        self.jobs = jobs
        self.in_flight = in_flight
        self.jobs_fit = jobs_fit


class BalanceError(GridrunError):
    """The account's balance, as the provider says it before the run sends anything, is below what the run would
    send: refused whole, as the provider's 402 would stop it midway. Exit 1, as a run the account refused.

    :ivar balance_micros: what the account has left, in micro-USD; None where not said.
    :ivar cost_micros: what the jobs the run would send cost (micro-USD, the plan's estimate).
    :ivar jobs: how many jobs that is; `jobs_fit`, how many of them the balance covers (sent with the budget the
        message names and `allow_partial`).
    """

    exit_code = 1

    def __init__(self, message: str, *, balance_micros: int | None = None, cost_micros: int | None = None,
                 jobs: int | None = None, jobs_fit: int | None = None) -> None:
        super().__init__(message)
        self.balance_micros = balance_micros
        self.cost_micros = cost_micros
        self.jobs = jobs
        self.jobs_fit = jobs_fit


class EndpointError(GridrunError):
    """Asked before the run sends anything (its balance check), the base URL answered with a web page where the
    API's JSON was asked for: a web site, or a login portal on the way, not the API. Every create would get the same
    page, its outcome unknown: refused whole, nothing recorded or sent. Exit 1, as a run the provider refused. So is a
    `provider: sim` run whose base URL answers without the simulator's header: not gridrun's simulator, perhaps a
    paid API.

    :ivar base_url: the base URL the run was to send to.
    """

    exit_code = 1

    def __init__(self, message: str, *, base_url: str | None = None) -> None:
        super().__init__(message)
        self.base_url = base_url


class InFlightError(GridrunError):
    """Jobs an earlier run sent are still rendering, and the plan (its manifest changed) no longer has them, or they
    were sent to another endpoint than the plan's (its base URL changed): a run would leave paid videos undownloaded,
    or ask a server that never had them and record them unknown."""


class StateError(GridrunError):
    """The state store is unusable, or a job moved along an illegal transition."""


class OutputsMovedError(StateError):
    """A run's report or results not written: its output folder is not the one the manifest now names, or is gone
    while that one is there (the project copied or moved); `gridrun run` on the manifest writes them there."""


class CopyNotWrittenError(StateError):
    """A run's copy of its manifest is missing and was not written again; `text` is the manifest's text as the
    state keeps it ("" when it does not)."""

    def __init__(self, message: str, *, text: str = "") -> None:
        super().__init__(message)
        self.text = text


class NotRecordedError(StateError):
    """The state holds nothing of what was asked: no state file yet, no run of the manifest, or no run of
    that id. A usage error: the manifest, the folder or the run id is the wrong one."""

    exit_code = 2


class NeverRanError(NotRecordedError):
    """`cancel` of a manifest with no run recorded, nor one starting (no state yet, or none of its runs in it):
    nothing at the provider to stop. The `gridrun cancel` command says so and exits 0, as for a manifest whose
    runs all ended (a cleanup step run whatever came before it, where the run never started, succeeds)."""


class RunStartingError(NotRecordedError):
    """Nothing recorded yet, but a run (or retry, or cancel) is starting: planning, or holding the state's lock while
    it asks the provider's balance, up to a few seconds. `pid` is its process; read again, the state has its run."""

    def __init__(self, message: str, *, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


class StateWriteError(StateError):
    """A run could not write its state (a full disk, an I/O error) and stopped: what it sent goes on at the
    provider, recorded before it was sent, and the next run collects it."""


class LockError(StateError):
    """Another runner holds the state lock, or a run of another state the lock of the output folder."""


class ProviderError(GridrunError):
    """A provider call went wrong. Never carries the API key."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        job_key: str | None = None,
        code_given: bool = True,
    ) -> None:
        """`code_given=False`: `code` is gridrun's own name for the HTTP status, the answer carrying no code: kept for
        deciding what to do, but the text says the provider gave none rather than show it as the provider's."""
        self.message = message
        self.status = status
        self.code = code
        self.code_given = code_given
        self.job_key = job_key
        parts = []
        if job_key:
            parts.append(f"job {job_key}")
        if status is not None:
            parts.append(f"HTTP {status}" if code_given or not code else f"HTTP {status} (no code given)")
        if code and code_given:
            parts.append(code)
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class NeedsKeyError(ProviderError):
    """The provider's API key is not set in the environment."""

    exit_code = 2


class RetryableError(ProviderError):
    """The same call may be tried again, after `retry_after` seconds when the provider said so."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class RateLimitedError(RetryableError):
    """HTTP 429."""


class ServerError(RetryableError):
    """HTTP 5xx, or a response that could not be understood."""


class TransportError(RetryableError):
    """The connection failed: reset, timeout, protocol error."""


class ConnectError(TransportError):
    """The connection could not be opened: the request provably never reached the server."""


class RejectedError(ProviderError):
    """A 4xx before the provider accepted the job: nothing was paid."""


class CancelNotTakenError(ProviderError):
    """The provider (or a gateway before it) does not take cancel requests at all (HTTP 405 Method Not Allowed,
    501 Not Implemented): the job renders on, and asking again cannot succeed."""


class CancelRefusedError(ProviderError):
    """The provider refused to cancel a video, saying why with a code (HTTP 400, 409 or 422: "cannot be cancelled
    in its current state"): a verdict on that video, not a failed request, so asking again meets it again, while
    the job renders on and is billed."""


class OutcomeUnknownError(ProviderError):
    """A create call may have reached the provider; whether a job was created (and paid) is not known."""


class ExpiredError(ProviderError):
    """The output URL is gone (403/404/410)."""


class DownloadError(ProviderError):
    """A download was truncated, of the wrong type, or corrupt."""


class CancelInterrupted(KeyboardInterrupt):
    """`cancel` ended by Ctrl-C (or SIGTERM, a hangup) once it had opened the state: `sent`, the cancel requests it
    recorded as asked (each is, before it is sent); `unanswered`, those of them whose outcome it did not record (no
    answer yet, or one not yet recorded): they may have stopped jobs at the provider that the state still has in
    flight, which `cancel` again records."""

    def __init__(self, text: str = "cancel interrupted", *, sent: int, unanswered: int) -> None:
        super().__init__(text)
        self.sent, self.unanswered = sent, unanswered

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as a `GridrunError` is: its text and fields."""
        return _made_again, (type(self), self.args, self.__dict__)


# How an error's text names the id the provider gave the request it answers (`transport.request_id`): " (request id
# req_123)", what a question to the provider's support quotes. `request_id_in` reads it back.
_REQUEST_ID_SAID = re.compile(r"\(request id ([\w.:/+=@-]{1,120})\)")


def said_request_id(request_id: str | None) -> str:
    """What an error's text ends with for the provider's id of the request (`request_id`): "" for none."""
    return f" (request id {request_id})" if request_id else ""


def request_id_in(text: str | None) -> str | None:
    """The provider's request id an error's text names (`said_request_id`), the last where it names several (a
    job's error that quotes an earlier one comes first); None where it names none."""
    if not text or "(request id " not in text:
        return None
    found = _REQUEST_ID_SAID.findall(text)
    return found[-1] if found else None


# A URL's path and query in an error's text: its host kept, the rest the job's own (a download's video URL).
_URL_PATH = re.compile(r"\b(https?://[^/\s]+)/\S*?(?=[:;,)]?(?:\s|$))")


# A bare video id in an error's text, no URL round it: "video video_5f83…" (the provider no longer knows it, has
# had none for a while, lost it) or a path "/videos/video_5f83…". An id has a digit in it, so that words ("video
# whose", "video file") are never taken for one; after a plain "video " it has the shape of an id too, an underscore
# in it (`video_5f83…`) or 12 characters or more (an opaque token, a UUID), so that a value a provider's sentence
# names ("video 10s", "video 1080p") is never folded, while gridrun's own "no longer knows video X" and a path
# "/videos/X" fold any id. A quote round it ('video_5f83') is part of it.
_VIDEO_ID = re.compile(r"(\bknows video |/videos/)(['\"]?)(?=[\w.:-]*\d)[\w][\w.:-]*?\2(?=[:;,)]?(?:\s|$)|[/'\"])"
                       r"|(\bvideo )(['\"]?)(?=[\w.:-]*\d)(?=[\w.:-]*_|[\w.:-]{12})[\w][\w.:-]*?\4"
                       r"(?=[:;,)]?(?:\s|$)|[/'\"])")


def alike(message: str) -> str:
    """`message` with the path and query of each URL it names left out ("GET http://cdn.example/…: corrupt"), and
    each bare video id ("the provider no longer knows video …"): the same cause met by many jobs, each naming its
    own video's URL or id, said once for them all."""
    if "://" in message:
        message = _URL_PATH.sub(r"\1/…", message)
    return _VIDEO_ID.sub(lambda m: f"{m.group(1) or m.group(3)}…", message) if "video" in message else message


def alike_text(messages: Sequence[str]) -> str:
    """What `messages`, alike (`alike`), say together: the one message where they are the same, else its form
    without the URLs and the video ids that differ."""
    first = messages[0]
    return first if all(m == first for m in messages) else alike(first)
