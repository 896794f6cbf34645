"""A job: one paid render, its key (how people name it) and its hash (what the provider is sent and bills).

`job_hash` is what makes a job the same job across runs: the state store finds earlier attempts by it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple


class Job(NamedTuple):
    """One paid render: what is sent, what it costs, where its video goes, and where it came from.

    Immutable like the other plan types; a named tuple rather than a frozen dataclass because a plan makes
    100,000 of them and a tuple is built several times faster.
    """

    key: str
    sweep: str | None
    repeat: int
    values: tuple[tuple[str, Any], ...]     # the matrix values that made it, in order
    params: Mapping[str, Any]               # the request: coerced, defaults explicit, local images absolute
    hash: str
    cost_micros: int
    output_str: str                         # absolute path of the video
    size: tuple[int, int]
    duration: float
    mode: str                               # t2v | i2v
    origin: str                             # "product", "include 2", with "sweep S: " in front for sweeps
    sources: Mapping[str, str]              # request parameter -> where its value came from

    @property
    def cost_usd(self) -> float:
        return self.cost_micros / 1_000_000

    @property
    def output(self) -> Path:
        return Path(self.output_str)

    def record(self, image_digests: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The mapping `Store.add_jobs` takes; with `image_digests` (a local image's path -> its content's
        SHA-256, as planned), its "request" holds the digest of each input image the job sends
        (`{"images": {path: sha256}}`): the parameters keep the path alone, and the job's hash the digest, which a
        later plan names when that file has changed (`image_changes`)."""
        record = self._record()
        if image_digests:
            images = {v: image_digests[v] for v in param_strings(self.params) if v in image_digests}
            if images:
                record["request"] = {"images": images}
        return record

    def _record(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "key": self.key,
            "sweep": self.sweep,
            "values": dict(self.values),
            "params": dict(self.params),
            "output_path": self.output_str,
            "cost_estimate_micros": self.cost_micros,
            "width": self.size[0],
            "height": self.size[1],
            "duration": self.duration,
        }



def param_strings(params: Mapping[str, Any]) -> list[str]:
    """The strings that are a parameter's value, or an item of one (a list of input images)."""
    out: list[str] = []
    for value in params.values():
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    return out


_FORMATTED: dict[tuple[type, Any], str] = {}


def format_value(value: Any) -> str:
    """How a matrix value reads in a job key: short, stable, one line."""
    if isinstance(value, (str, int, float)):
        k = (type(value), value)
        hit = _FORMATTED.get(k)
        if hit is None:
            hit = _format_value(value)
            if len(_FORMATTED) < 100_000:
                _FORMATTED[k] = hit
        return hit
    return _format_value(value)


def _format_value(value: Any) -> str:
    text = whole_key_text(value)
    if len(text) > 40:
        digest = hashlib.sha256(text.encode()).hexdigest()[:6]
        text = f"{text[:32]}…{digest}"
    return text


def whole_key_text(value: Any) -> str:
    """A matrix value's text in a job key before it is shortened: one longer than 40 characters is written there as
    its first 32, '…' and 6 hex digits of its hash (`format_value`)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=isinstance(value, dict))
    else:
        text = str(value)
    return " ".join(text.split())


def job_key(sweep: str | None, values: Iterable[tuple[str, Any]], repeat: int) -> str:
    body = ",".join(f"{k}={format_value(v)}" for k, v in values) or "job"
    key = f"{sweep}/{body}" if sweep else body
    return f"{key}#{repeat}" if repeat else key


_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def canonical(value: Any) -> str:
    # Strings, integers, booleans and null directly (the same text json.dumps gives); the rest through json.
    t = type(value)
    if t is str:
        return _encode_string(value)
    if t is int:
        return int.__repr__(value)
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


_JSON_SCALARS = (str, int, bool, type(None))
MAX_DEPTH = 500  # lists and mappings in a request value, one in another: JSON's encoder stops near 1,000


def not_json(value: Any) -> str | None:
    """Why `value`, a request parameter's, cannot be sent, None when it can: a request is JSON, so strings,
    integers, finite numbers, booleans, null, and lists and string-keyed mappings of them (a tuple is a list).
    A NaN or an infinity (YAML's `.nan`, `.inf`) has no JSON number; any other object (`{{ range(3) }}`,
    `{{ cfg.get }}`) would be hashed as its Python text, perhaps with a memory address, and could not be sent."""
    # (item, depth, where it is: (the parent's, step) or None), depth first; where is written only for a problem
    stack: list[tuple[Any, int, Any]] = [(value, 0, None)]
    while stack:
        item, depth, at = stack.pop()
        if isinstance(item, _JSON_SCALARS):
            continue
        if isinstance(item, float):
            if math.isnan(item):
                return f"is NaN (not a number){_at(at)}, which a request cannot carry: JSON has no such number"
            if math.isinf(item):
                return (f"is {'-' if item < 0 else ''}infinity{_at(at)}, which a request cannot carry: JSON has no "
                        "such number")
            continue
        if depth >= MAX_DEPTH and isinstance(item, (list, tuple, dict)):  # a list that holds itself, say
            return f"nests lists or mappings more than {MAX_DEPTH} deep"
        if isinstance(item, (list, tuple)):
            for i in range(len(item) - 1, -1, -1):
                v = item[i]
                if not isinstance(v, _JSON_SCALARS):
                    stack.append((v, depth + 1, (at, i)))
            continue
        if isinstance(item, dict):
            for k, v in reversed(list(item.items())):
                if not isinstance(k, str):
                    if not isinstance(k, (int, float, type(None))):
                        return f"has a key that is a {type(k).__name__}{_at(at)}: a request's keys are text (JSON)"
                    text = json.dumps(k)  # what JSON would write for it: 1, true, null
                    return (f"has the key {text}{_at(at)}, not text ({type(k).__name__}): a request's keys are text "
                            f"(JSON); quote it ('{text}'), the request it makes is the same")
                if not isinstance(v, _JSON_SCALARS):
                    stack.append((v, depth + 1, (at, k)))
            continue
        return (f"is a {type(item).__name__} object{_at(at)}, which is not a value a request can carry (text, numbers, "
                "true/false, null, lists and mappings of them): Python would write its type, often with a memory "
                "address that changes every run (a new request, paid for again); add | list, or | join(', ') for text")
    return None


def _at(at: Any) -> str:
    """` (at motion.strength[1])` for the place `not_json` kept, "" for the value itself."""
    steps: list[str] = []
    while at is not None:
        at, step = at
        steps.append(f"[{step}]" if isinstance(step, int) else f".{step}")
    text = "".join(reversed(steps)).removeprefix(".")
    return f" (at {text})" if text else ""


def job_hash(provider: str, model: str, params: Mapping[str, Any], repeat: int) -> str:
    """SHA-256 of what the provider receives and bills; local files enter by their content digest.

    The text hashed is the canonical JSON (sorted keys, no spaces, UTF-8) of
    {"model", "params", "provider", "repeat"}.
    """
    text = f'{{"model":{canonical(model)},"params":{canonical(params)},"provider":{canonical(provider)},"repeat":{repeat}}}'
    return hashlib.sha256(text.encode()).hexdigest()



# A reported cost is as expected within these factors of the job's estimate. Real prices move the figure by well
# under them (another route's resolution tier, an audio surcharge, a discount: 0.5x-2.5x at most in the price
# table), while a 0 for a finished paid render is no price at all (a cost not final yet, or billed later).
COST_FACTORS = (0.2, 5.0)
# Above COST_FACTORS and up to this many times the estimate, the figure of a completed render is still a plausible
# amount in dollars: what a price table too low (a capabilities file out of date, or mistyped) gives. It counts as
# billed, so that the budget stops the run, and is said (`billed_above_note`). Further away, it is in another unit:
# a full price in cents is 100x, and stays above this factor down to 0.2x of the estimate (below which a figure in
# dollars is doubted low anyway); micro-dollars are 1,000,000x. The estimate counts instead. A failed or cancelled
# render's partial charge has no such floor (a cancel's 10% in cents is 10x), so above the upper factor of
# COST_FACTORS its figure is doubted.
BILLED_FACTOR = 20.0


def counted_cost(estimate: int, reported: int | None, *, completed: bool,
                 own: int | None = None) -> tuple[int | None, bool]:
    """What a render counts against the budget (micro-USD, None for nothing) given the provider's `reported`
    figure, and whether that figure was doubted (then the estimate counts instead).

    A completed render counts a reported figure from the lower factor of COST_FACTORS up to BILLED_FACTOR times
    the estimate, and the estimate when none is reported. A failed or cancelled one counts what was reported from
    0 (nothing charged) up to the upper factor of COST_FACTORS, and nothing when none is. A job estimated at 0
    has nothing to compare with: its figure is taken as is. `own`: gridrun's own price of a job whose estimate a
    capabilities file the manifest names makes lower (`Plan.lowered`): a completed render's figure above
    BILLED_FACTOR times the estimate but within it of that price is a bill at gridrun's prices, and counts, so
    that a file setting prices near 0 does not leave the budget counting its estimates of what the provider bills.
    """
    if reported is None:
        return (estimate if completed else None), False
    low, high = billed_factors(completed)
    if estimate <= 0 or low * estimate <= reported <= high * estimate:
        return reported, False
    if completed and own is not None and own > estimate and high * estimate < reported <= high * own:
        return reported, False
    return estimate, True


def billed_factors(completed: bool) -> tuple[float, float]:
    """The factors of the estimate within which a render's reported figure counts as billed (`counted_cost`)."""
    return (COST_FACTORS[0], BILLED_FACTOR) if completed else (0.0, COST_FACTORS[1])


def billed_above(estimate: int, reported: int | None, *, completed: bool) -> bool:
    """Whether a reported figure counted as billed (`counted_cost`) is above the upper factor of COST_FACTORS of
    the estimate: the price table most likely prices the job too low. Only a completed render's can be."""
    return (completed and reported is not None and estimate > 0
            and COST_FACTORS[1] * estimate < reported <= BILLED_FACTOR * estimate)


def billed_above_note(estimate: int, reported: int, *, more: int = 0, prices_from: str = "") -> str:
    """What the run's errors, `status`, the report and the export say of renders billed above the upper factor of
    COST_FACTORS of their estimates (`billed_above`): the first one's figures, how many more, and where the
    prices come from (`capabilities.prices_from`)."""
    times = f"{reported / estimate:.3g}x"
    others = f", and {more:,} more job{'' if more == 1 else 's'} above {COST_FACTORS[1]:g}x " \
             f"{'its estimate' if more == 1 else 'their estimates'}" if more else ""
    where = f" ({prices_from})" if prices_from else ""
    return (f"the provider billed {usd_text(reported)} for a job estimated {usd_text(estimate)} ({times}){others}: "
            f"counted as billed; the price table may be out of date{where}")


KEY_IGNORED = "key-ignored"
"""The event recorded on a job whose create, sent again with its idempotency key, got a video of its own while the
provider's request log lists another video made under the same key: the provider made a video per create of the key
(it ignored the key, or had forgotten it), and the other one was billed too. What the run's errors, `status`, the
report and the export say of the run (`key_ignored_note`)."""


def key_ignored_note(provider: str, *, jobs: int = 1) -> str:
    """What the run's errors, `status`, the report and the export say of a run in which a create sent again with its
    idempotency key got a new video while the provider's request log lists another made under the key (event
    KEY_IGNORED). `jobs`: how many jobs it was seen of."""
    more = f" ({jobs:,} jobs)" if jobs > 1 else ""
    return (f"the provider made two videos for one idempotency key{more}: a create sent again with its key got a new "
            "video, and the request log lists another made under the key, billed too and kept by no job; no create "
            "was sent again on its key for the rest of the run. Set `honours_idempotency_keys: false` in a "
            f"capabilities file for {provider}")


class BilledAbove(NamedTuple):
    """The jobs a run paid that the provider billed above the upper factor of COST_FACTORS of their estimates
    (`billed_above`): what `plan`, a run's pre-send lines and its end line's next step scale what is sent next
    by, the price table being most likely too low for them all."""

    run_id: int
    jobs: int
    estimate_micros: int   # their estimates, summed
    billed_micros: int     # the provider's figures, summed
    note: str              # what status says of them (`billed_above_note`)

    @property
    def factor(self) -> float:
        return self.billed_micros / self.estimate_micros

    def may_cost(self, micros: int) -> int:
        """What jobs estimated at `micros` may cost, billed as these were."""
        return micros * self.billed_micros // self.estimate_micros

    @classmethod
    def of(cls, run_id: int, above: Sequence[tuple[int, int]], prices_from: str = "") -> BilledAbove | None:
        """From `above`, (estimate, reported) of each job the run paid billed above (`billed_above`), in plan
        order; None when there are none."""
        if not above:
            return None
        (estimate, reported), more = above[0], len(above) - 1
        return cls(run_id, len(above), sum(e for e, _ in above), sum(r for _, r in above),
                   billed_above_note(estimate, reported, more=more, prices_from=prices_from))

    def warning(self, micros: int, what: str) -> str:
        """What is said of `what` (the jobs sent next: "the $3.15 this plan sends") estimated at `micros`."""
        return (f"the last run (run {self.run_id}) was billed {self.factor:.3g}x the estimates ({self.note}): "
                f"{what} may cost about {usd_text(self.may_cost(micros))}")


BILLED_MARGIN = (21, 20)
"""How far above 1 (as a fraction: 1.05x) the bills of an earlier run must be above their estimates before a run's
budget counts the jobs it sends at that ratio before it starts (`Billing.clear`): a provider rounding its bills up
by a cent or two is not a price table out of date. Within a run, what its own renders are billed counts as it is."""


class Billing(NamedTuple):
    """What completed renders were billed against their estimates, as the budget counts it: the highest ratio
    seen, of one job's bill to its estimate (the job billed furthest above it). The highest, not the ratio of the
    sums: a budget is a cap, and a price table wrong for one quality or duration (a 1080p job billed 3x, 540p ones
    as estimated) would let the jobs it prices most wrongly pass the cap under a ratio averaged with the others;
    counting every job at the highest ratio holds jobs back instead, which the run names with their price."""

    billed_micros: int     # the bill of the job billed furthest above its estimate
    estimate_micros: int   # that job's estimate (> 0)
    run_id: int | None = None  # the run whose renders were billed so; None for the run counting it

    @property
    def factor(self) -> float:
        return self.billed_micros / self.estimate_micros

    def above(self, other: Billing | None) -> bool:
        """Whether this ratio is higher than `other`'s (None: 1x, billed as estimated)."""
        if other is None:
            return self.billed_micros > self.estimate_micros
        return self.billed_micros * other.estimate_micros > other.billed_micros * self.estimate_micros

    def clear(self) -> bool:
        """Whether the ratio passes BILLED_MARGIN: enough for a run to count it before it starts."""
        num, den = BILLED_MARGIN
        return self.billed_micros * den > self.estimate_micros * num

    def scale(self, micros: int) -> int:
        """What jobs estimated at `micros` cost billed at this ratio (never less than `micros`), rounded up to the
        micro-dollar: what the budget counts them at."""
        if self.billed_micros <= self.estimate_micros:
            return micros
        return -(-micros * self.billed_micros // self.estimate_micros)

    def said(self) -> str:
        """The ratio in words, for the budget's lines: "4x the estimates, as run 1 was billed"."""
        by = "as this run was billed" if self.run_id is None else f"as run {self.run_id} was billed"
        return f"{self.factor:.3g}x the estimates, {by}"


def scaled(micros: int, billing: Billing | None) -> int:
    """`micros` of estimates as the budget counts them after `billing` (`Billing.scale`); as they are without."""
    return micros if billing is None else billing.scale(micros)


def fitting(submit: Sequence[Job], in_flight: Sequence[Job], budget_micros: int,
            billing: Billing | None = None) -> list[Job]:
    """The jobs of `submit` that a run stopping at its budget (--allow-partial) sends, as it reserves them: in
    order, each that fits beside the jobs in flight it follows and those taken before it, the estimates counted at
    `billing`'s ratio; one that does not fit is skipped, and later ones that do are taken (a run's estimates
    honoured, nothing in flight frees room for it)."""
    reserved, sent = sum(j.cost_micros for j in in_flight), []
    for job in submit:
        if scaled(reserved + job.cost_micros, billing) <= budget_micros:
            reserved += job.cost_micros
            sent.append(job)
    return sent


def queued_cancel_said(free: bool | None, one: bool) -> str:
    """What `gridrun cancel` does to the jobs of a run still queued at the provider (`one`: a single job), by
    whether the provider bills a video cancelled while queued (`ProviderCaps.queued_cancel_free`; None: it does not
    say): "stops those still queued at no charge" only where it does not."""
    some = "it if still" if one else "those still"
    if free:
        return f"stops {some} queued at no charge"
    if free is False:
        return f"asks the provider to stop {some} queued, which it bills all the same"
    return f"asks the provider to stop {some} queued, which it may bill anyway: it promises no refund"


def usd_text(micros: int) -> str:
    """`micros` (micro-USD) as gridrun shows money: "$1,234.50", in cents, with the further digits of a figure
    that has them ("$2.625", "$0.123456"), never rounded: a sum shown beside a budget reads as the budget counts
    it, and the same figure reads the same in plan, the live progress, status and the report."""
    dollars, rest = divmod(abs(micros), 1_000_000)
    cents = f"{rest:06d}".rstrip("0").ljust(2, "0")
    return f"{'-' if micros < 0 else ''}${dollars:,}.{cents}"


def span_text(seconds: float, *, tenths_under: float = 60.0) -> str:
    """A span of time as gridrun says it: "4.2 s", "38 s", "12 min 05 s", "3 h 02 min"; tenths of a second under
    `tenths_under` seconds (a job's age in a note: under 10; a run's figures in the report: under a minute)."""
    seconds = max(0.0, seconds)
    if seconds < tenths_under - 0.05:  # 59.96 would print as 60.0 s
        return f"{seconds:.1f} s"
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
