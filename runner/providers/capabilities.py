"""Provider capabilities as data: models, parameter types and enums, cross-field rules, prices.

Pure: `load()` reads the YAML data files once; everything else takes values and returns values.
Costs are integer micro-USD so that sums and budget comparisons are exact.
"""

from __future__ import annotations

import decimal
import difflib
import math
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from runner.errors import GridrunError, ManifestError
from runner.textforms import in_seconds

DATA_DIR = Path(__file__).parent / "data"
MICROS = 1_000_000
MAX_JOB_USD = 1_000_000
"""No video costs this much: a price table that prices a job above it holds a wrong figure (and the job's
micro-USD would not fit the state's 64-bit integers and sums)."""

_SCALAR_TYPES = {"string", "integer", "number", "boolean", "ratio", "size", "tier", "image", "image_list"}


class CapabilityDataError(Exception):
    """A capability data file is malformed (a bug in the data, not in a manifest)."""


class RuleError(CapabilityDataError):
    """A rule of a model's `rules` that cannot be applied (a `max` given for a text parameter, a `when_matches`
    pattern that takes too long on a job's value). `rule` is the rule as its file gives it and `at` its key there
    (`("max",)`, `("when_matches", "prompt")`), for the error to be put at that line of the file
    (`api._rule_site`); `provider` and `model` are set by the model whose check met it."""

    def __init__(self, message: str, *, rule: Mapping[str, Any], at: tuple[str, ...], provider: str = "",
                 model: str = "") -> None:
        super().__init__(f"{provider}/{model}: a rule's {'.'.join(at)}: {message}" if model else message)
        self.message, self.rule, self.at, self.provider, self.model = message, rule, at, provider, model

    def of(self, provider: str, model: str) -> RuleError:
        """This error, said of `provider`'s `model`."""
        return RuleError(self.message, rule=self.rule, at=self.at, provider=provider, model=model)


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One request parameter of a model."""

    name: str
    type: str
    description: str = ""
    enum: tuple[Any, ...] | None = None
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    modes: tuple[str, ...] = ("t2v", "i2v")
    aliases: tuple[str, ...] = ()          # other names the provider takes it under (`seconds` for `duration`)
    other_names: tuple[str, ...] = ()      # other providers' names for it (fal's `image_url`), which this one ignores
    max_length: int | None = None          # the most characters of a string the provider takes
    max_bytes: int | None = None           # the largest image file (or data URI's image) the provider takes
    routes: tuple[str, ...] = ()           # a gateway passthrough: honoured only when routed to one of these


@dataclass(frozen=True, slots=True)
class Issue:
    """A parameter the model does not accept: the field (a parameter name) and why."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of `ModelCaps.check`: parameters with defaults made explicit and values coerced."""

    params: dict[str, Any]
    issues: tuple[Issue, ...]
    warnings: tuple[Issue, ...]
    mode: str
    size: tuple[int, int]
    cost_micros: int

    @property
    def ok(self) -> bool:
        return not self.issues


def _ratio(text: str) -> float | None:
    """W / H of `text` ("16:9", "1365x768"); None unless both and their quotient are finite numbers above 0: an
    infinite ratio ("inf:1", "1:1e-320") has no nearest supported one to be mapped to, and was mapped to the first
    listed (9:16, tall, for one infinitely wide)."""
    for sep in (":", "x", "X"):
        if sep in text:
            a, _, b = text.partition(sep)
            try:
                w, h = float(a), float(b)
            except ValueError:
                return None
            ratio = w / h if w > 0 and h > 0 else 0.0
            return ratio if 0 < ratio < math.inf and w < math.inf and h < math.inf else None
    return None


_PLAIN_HTTP = "{value!r} is a plain http URL; images are taken as https URLs or data URIs"
_LOCAL_FILES = " (a local file is sent as a data URI)"


def _plain_http(value: str) -> bool:
    return value[:7].lower() == "http://"


def _tier_scale(value: Any) -> float | None:
    """The number of a resolution tier ("4K" -> 4.0), None when `value` is none."""
    if not isinstance(value, str) or not value.strip().upper().endswith("K"):
        return None
    try:
        scale = float(value.strip()[:-1])
    except ValueError:
        return None
    return scale if math.isfinite(scale) and scale > 0 else None


def _nearest(target: float, options: Sequence[str]) -> str:
    return min(options, key=lambda o: abs(math.log(_ratio(o) or 1.0) - math.log(target)))


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


@dataclass(frozen=True, slots=True)
class ModelCaps:
    """What one model accepts, how it sizes its output, and what it costs."""

    provider: str
    model: str
    params: Mapping[str, ParamSpec]
    tier_sizes: Mapping[str, Mapping[str, str]]
    rules: tuple[Mapping[str, Any], ...]
    prices: Mapping[str, Any]
    description: str = ""
    render_seconds: float | None = None    # a typical render time of a 5 s clip, to schedule polls before any is seen
    aliases: Mapping[str, str] = field(default_factory=dict)  # another name -> the parameter it stands for
    other_names: Mapping[str, str] = field(default_factory=dict)  # another provider's name -> the parameter here

    # -- checking ---------------------------------------------------------------------------------
    def check(self, params: Mapping[str, Any], *, as_provider: bool = False) -> Checked:
        """Coerce and check `params`; make defaults explicit; compute the render size and cost.

        A parameter given by another name (`seconds` for `duration`) is checked and written under its own, so
        that both spellings make one request; a problem with it is named as it was given.

        :param as_provider: check a request as the provider does (the simulator): an unknown name passes
            through even when it looks like a slip of a known one (`qualty`), which the planner refuses since
            the provider would bill the default instead, and problems are told with no advice on manifests.
        """
        out: dict[str, Any] = {}
        issues: list[Issue] = []
        warnings: list[Issue] = []
        spelled: dict[str, str] = {}
        if self.aliases and not self.aliases.keys().isdisjoint(params):
            params, spelled, issues = self._unalias(params)
        for name, value in params.items():
            spec = self.params.get(name)
            if spec is None:
                if as_provider:
                    out[name] = value
                    continue
                own = self.other_names.get(name)
                if own is not None:
                    # Another provider's name for a parameter (fal's `image_url`): sent as written, the provider
                    # would ignore it and render (and bill) without it.
                    issues.append(Issue(name, f"unknown parameter for {self.model}, which takes it as '{own}'; did "
                                              f"you mean '{own}'?"))
                    continue
                close = difflib.get_close_matches(name, list(self.params), n=1, cutoff=0.8)
                if close and close[0] not in params:
                    # Most likely a slip: sent as written, the provider would ignore it and bill its default.
                    issues.append(Issue(name, f"unknown parameter for {self.model}; did you mean '{close[0]}'? (a "
                                              "parameter gridrun does not know yet can be declared in a capabilities "
                                              "file, `capabilities:`)"))
                    continue
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                warnings.append(Issue(name, f"unknown parameter for {self.model}{hint}; passed through unchecked"))
                out[name] = value
                continue
            if value is None:
                continue
            coerced, problem = _coerce(spec, value, self.model, files=not as_provider)
            if problem:
                issues.append(Issue(name, problem + ("" if as_provider else self._elsewhere(name, value))))
                continue
            nearest = self._nearest_ratio(coerced) if spec.type == "size" and ":" in coerced else coerced
            if nearest != coerced:
                # W:H is an aspect ratio (seed page): the provider renders the nearest it has. Sent as written (a
                # job's hash is of what it sends, and jobs that ran before must keep theirs); sized by the nearest.
                warnings.append(Issue(name, f"{value!r} is not supported by {self.model}; the provider renders the "
                                            f"nearest, {nearest!r}"))
            elif spec.type in ("ratio", "size", "tier") and coerced != value:
                warnings.append(Issue(name, f"{value!r} is not supported by {self.model}; the nearest, {coerced!r}, is used"))
            out[name] = coerced
            if spec.routes and not as_provider:
                # A passthrough of the gateway (seed page, "Additional Parameters"): routed to another provider,
                # the request is rendered, and billed, without it; which provider a request goes to is the
                # gateway's choice.
                warnings.append(Issue(name, f"is honoured only when the gateway routes the request to "
                                            f"{' or '.join(spec.routes)}; routed elsewhere, the video is rendered "
                                            "(and billed) without it"))
        for name, spec in self.params.items():
            if name not in out and spec.default is not None and not any(i.field == name for i in issues):
                out[name] = spec.default
            if spec.required and name not in out and not any(i.field == name for i in issues):
                issues.append(Issue(name, f"'{name}' is required by {self.model}"))
        mode = "i2v" if out.get("input_reference") else "t2v"
        for name in out:
            spec = self.params.get(name)
            if spec is not None and mode not in spec.modes:
                issues.append(Issue(name, f"is only for {'/'.join(spec.modes)} ({self.model}), not {mode}"))
        try:
            overridden = _overridden(self.rules, out)
            for rule in self.rules:
                if rule.get("ignored"):
                    unused = _unused(rule, out, params)
                    if unused:
                        warnings.append(unused)
                    continue
                if rule.get("warn"):
                    said = _warned(rule, out, params)
                    if said:
                        warnings.append(said)
                    continue
                if overridden & _conditions(rule):
                    # A rule of a value the render does not use (1080p beside a size in pixels) does not apply.
                    continue
                issue = _apply_rule(rule, out)
                if issue:
                    issues.append(issue)
        except RuleError as exc:
            raise exc.of(self.provider, self.model) from None
        if spelled:
            issues = [Issue(spelled.get(i.field, i.field), i.message) for i in issues]
            warnings = [Issue(spelled.get(w.field, w.field), w.message) for w in warnings]
        size = self.render_size(out)
        cost = self.cost_micros(out, size) if not issues else 0
        return Checked(out, tuple(issues), tuple(warnings), mode, size, cost)

    def unused(self, checked: Mapping[str, Any], given: Mapping[str, Any]) -> frozenset[str]:
        """The parameters of `given` (a request as written) that another decides instead in `checked` (the same
        request checked): each one `check` warns 'is not used' of."""
        try:
            return frozenset(rule["param"] for rule in self.rules
                             if rule.get("ignored") and _unused(rule, checked, given) is not None)
        except RuleError as exc:
            raise exc.of(self.provider, self.model) from None

    def _elsewhere(self, name: str, value: Any) -> str:
        """The note "; for a height like 720p use 'quality: 720p'" for a value refused by parameter `name` that
        another parameter lists (fal's `resolution: 720p` is `quality: 720p` here); "" when none does."""
        # A number (`n: 5`, five videos) could be meant for any numeric parameter, and one that lists it (duration)
        # is most likely not the one meant: only a word or a spelled value (720p, 1K) that one other parameter
        # alone lists is pointed to it.
        if not isinstance(value, str) or _numeric(value):
            return ""
        listing = [other for other, spec in self.params.items() if other != name and spec.enum and value in spec.enum]
        if len(listing) != 1:
            return ""
        other = listing[0]
        what = "a height like " if self.params[other].type == "string" and value.endswith("p") else ""
        return f"; for {what}{value} use '{other}: {value}'"

    def _unalias(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[Issue]]:
        """`params` with a value given by another name moved, in place, to its parameter's own (a null under the
        own name gives way to it); the parameters so given (parameter -> name given); and an issue for each other
        name given beside its parameter with a different value (which one the provider would use is unknown)."""
        drop: set[str] = set()
        spelled: dict[str, str] = {}
        issues: list[Issue] = []
        for alias, name in self.aliases.items():
            if alias not in params:
                continue
            value, other = params[alias], params.get(name)
            if value is not None and other is None:
                spelled[name] = alias
                drop.add(name)
                continue
            drop.add(alias)
            if value is not None and not self._same(name, value, other):
                issues.append(Issue(alias, f"{_written(value)} contradicts {name} {_written(other)}: {alias} is another name for "
                                           f"{name}; give one of them"))
        renamed = {alias: name for name, alias in spelled.items()}
        given = {renamed.get(k, k): v for k, v in params.items() if k not in drop}
        return given, spelled, issues

    def _same(self, name: str, a: Any, b: Any) -> bool:
        """Whether `a` and `b` are one value of parameter `name` (8 and "8" are; 8 and 10 are not)."""
        spec = self.params[name]
        (ca, pa), (cb, pb) = _coerce(spec, a, self.model), _coerce(spec, b, self.model)
        return ca == cb if not (pa or pb) else str(a) == str(b)

    # -- sizing -----------------------------------------------------------------------------------
    def _nearest_ratio(self, text: str) -> str:
        """`text` (W:H) as the model's nearest aspect ratio, when it lists them."""
        ratios = self.params.get("aspect_ratio")
        if ratios is None or not ratios.enum or text in ratios.enum:
            return text
        return _nearest(_ratio(text) or 1.0, [str(e) for e in ratios.enum])

    def render_size(self, params: Mapping[str, Any]) -> tuple[int, int]:
        """The (width, height) the provider renders: size wins, then aspect_ratio + resolution, then quality."""
        size = params.get("size")
        if isinstance(size, str) and "x" in size:
            w, _, h = size.partition("x")
            return int(w), int(h)
        ratio_text = self._nearest_ratio(size) if isinstance(size, str) and ":" in size else params.get("aspect_ratio", "16:9")
        ratio = _ratio(str(ratio_text)) or 16 / 9
        resolution = params.get("resolution")
        if resolution and resolution in self.tier_sizes:
            sizes = self.tier_sizes[resolution]
            key = _nearest(ratio, list(sizes))
            w, _, h = sizes[key].partition("x")
            return int(w), int(h)
        short = int(str(params.get("quality", "540p")).rstrip("p"))
        if ratio >= 1:
            return _even(short * ratio), short
        return short, _even(short / ratio)

    def tier(self, size: tuple[int, int]) -> str:
        """The price tier of a render size: the quality whose 16:9 frame has the nearest number of pixels
        (so that the sizes of one tier, 1024x1024 as much as 1365x768, cost the same)."""
        pixels = size[0] * size[1]
        tiers = list(self.prices["base_5s"])
        return min(tiers, key=lambda q: abs(math.log(int(q.rstrip("p")) ** 2 * 16 / 9 / pixels)))

    # -- pricing ----------------------------------------------------------------------------------
    def check_prices(self) -> None:
        """:raises CapabilityDataError: a price table that would price this model's jobs wrong, or not at all."""
        _check_prices(f"{self.provider}/{self.model}", self.prices, self.params)

    def cost_micros(self, params: Mapping[str, Any], size: tuple[int, int] | None = None) -> int:
        """The price of one job in micro-USD, from the dated price table: the base price of 5 s times the
        duration's factor, plus, with audio, the audio price of 5 s times the audio's own factor (audio is billed
        per 5 s: 10 s is two units where the base is 2.2x). A product finer than a micro-USD is rounded up, so that
        a plan never says less than the jobs cost. A table without `audio_duration_factor` (a user's
        capabilities file written before it) scales audio by `duration_factor`.

        :raises CapabilityDataError: the table has no figure for the job (a duration or tier it lacks).
        """
        size = size or self.render_size(params)
        given = params.get("size")
        in_pixels = isinstance(given, str) and "x" in given
        # A size in pixels (WxH) or a resolution sets the scale, and its tier is priced; a ratio (W:H) sets only
        # the shape, and the render keeps the quality's scale and price (1:1 at 1080p is 1080x1080). A quality
        # (a passthrough, sent as written, its default too) or a resolution sent beside what sets the scale may
        # be the one the provider renders and bills: the job is priced at the dearest of the tiers it sends.
        tiers = []
        if in_pixels or "resolution" in params or "quality" not in params:
            tiers.append(self.tier(size))
        if in_pixels and "resolution" in params:
            tiers.append(self.tier(self.render_size({k: v for k, v in params.items() if k != "size"})))
        if "quality" in params:
            tiers.append(str(params["quality"]))
        price = max(self._price(tier, params) for tier in dict.fromkeys(tiers))
        n = int(params.get("n", 1))
        if price * n > MAX_JOB_USD:
            shown = f"{price * n:,.2f}" if price * n < 10**12 else f"{float(price * n):.3g}"
            raise CapabilityDataError(f"{self.provider}/{self.model}: prices: the table prices a job at ${shown}, "
                                      f"above ${MAX_JOB_USD:,} a job; check its figures")
        return math.ceil(price * n * MICROS)  # a factor's product finer than a micro-USD is rounded up, never cut

    def _price(self, tier: str, params: Mapping[str, Any]) -> Decimal:
        """The price in USD of one video of `params` rendered at `tier`.

        :raises CapabilityDataError: the table has no figure for it."""
        duration = int(params.get("duration", 5))
        lookups = [("base_5s", tier), ("duration_factor", duration)]
        if params.get("generate_audio_switch"):
            audio_factor = "audio_duration_factor" if "audio_duration_factor" in self.prices else "duration_factor"
            lookups += [("audio_5s", tier), (audio_factor, duration)]
        figures: dict[str, Decimal] = {}
        for table, key in lookups:
            try:
                figures[table] = Decimal(str(self.prices[table][key]))
            except KeyError:
                raise CapabilityDataError(
                    f"{self.provider}/{self.model}: prices.{table} has no figure for {key!r}") from None
        price = figures["base_5s"] * figures["duration_factor"]
        if "audio_5s" in figures:
            price += figures["audio_5s"] * figures.get("audio_duration_factor", figures["duration_factor"])
        return price


def written_value(value: Any) -> str:
    """`value` as a message shows it: a boolean or a null as the manifest writes it (true and null, not Python's
    True and None)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else repr(value)


_written = written_value

# How much of a value a message quotes: a whole CSV row, or a list of long prompts, made errors of 20,000 characters.
_BRIEF = 60


def _brief(value: Any) -> str:
    """`value` as `written_value` shows it, cut to its first `_BRIEF` characters (and `…`) when longer."""
    text = written_value(value)
    return text if len(text) <= _BRIEF else text[:_BRIEF] + "…"


def _coerce(spec: ParamSpec, value: Any, model: str, *, files: bool = True) -> tuple[Any, str | None]:
    """`value` as `spec` types it, or None and why not. `files`: local image files may be given (a manifest's
    values), and a refused image says how they are sent."""
    t = spec.type
    if t == "integer":
        if isinstance(value, bool):
            return None, f"expected an integer, got {_brief(value)}"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                try:
                    number = float(value.strip())
                except ValueError:
                    unit = in_seconds(value) if "seconds" in spec.description.lower() else ""
                    return None, f"expected an integer, got {_brief(value)}{unit}"
                if not number.is_integer():
                    return None, f"expected an integer, got {_brief(value)}"
                value = int(number)
        if not isinstance(value, int):
            return None, f"expected an integer, got {_brief(value)}"
    elif t == "number":
        if isinstance(value, bool):
            return None, f"expected a number, got {_brief(value)}"
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None, f"expected a number, got {_brief(value)}"
        if not isinstance(value, (int, float)):
            return None, f"expected a number, got {_brief(value)}"
    elif t == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            # text (a CSV cell, "{{ shot.audio }}") is taken as the boolean it names, as digits are an integer
            value = value.strip().lower() == "true"
        elif isinstance(value, str):
            return None, (f"expected true or false, got the text {value!r} (text is taken as a boolean only when it "
                          "is true or false)")
        if not isinstance(value, bool):
            return None, f"expected true or false, got {_brief(value)}"
    elif t in ("string", "image"):
        if t == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
            # a number from a template of one expression ("{{ year }}"), as Jinja would print it
            value = str(value)
        if not isinstance(value, str):
            return None, f"expected a string, got {_brief(value)}"
        if spec.max_length is not None and len(value) > spec.max_length:
            if not files:
                return None, f"must be at most {spec.max_length} characters, got {len(value)}"
            return None, (f"is {len(value):,} characters long; {model} takes at most {spec.max_length:,} (the "
                          "provider would refuse it)")
        if t == "image" and _plain_http(value):
            return None, _PLAIN_HTTP.format(value=value) + (_LOCAL_FILES if files else "")
    elif t == "image_list":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
            return None, f"expected an image path or URL, or a list of them, got {_brief(value)}"
        plain = next((v for v in items if _plain_http(v)), None)
        if plain is not None:
            return None, _PLAIN_HTTP.format(value=plain) + (_LOCAL_FILES if files else "")
        return items, None
    elif t == "ratio":
        if not isinstance(value, str) or _ratio(value) is None or ":" not in value:
            hint = ' (quote it: aspect_ratio: "16:9")' if isinstance(value, int) else ""
            return None, f"expected an aspect ratio like \"16:9\", got {_brief(value)}{hint}"
        if spec.enum and value not in spec.enum:
            return _nearest(_ratio(value) or 1.0, [str(e) for e in spec.enum]), None
        return value, None
    elif t == "tier":
        # "Any tier is accepted and mapped to the nearest supported value" (seed page): 0.5K, 1K, 2K, 4K
        scale = _tier_scale(value)
        if scale is None:
            return None, f"expected a resolution tier like \"1K\", got {_brief(value)}"
        if spec.enum and value not in spec.enum:
            known = [str(e) for e in spec.enum if _tier_scale(e) is not None]
            if known:
                return min(known, key=lambda e: abs(math.log((_tier_scale(e) or 1.0) / scale))), None
        return value, None
    elif t == "size":
        if not isinstance(value, str) or _ratio(value) is None:
            return None, f"expected a size like \"1365x768\" or a ratio like \"16:9\", got {_brief(value)}"
        if ":" in value:
            return value, None
        if spec.enum and value not in spec.enum:
            return _nearest(_ratio(value) or 1.0, [str(e) for e in spec.enum]), None
        return value, None
    if spec.enum is not None and value not in spec.enum:
        options = ", ".join(str(e) for e in spec.enum)
        return None, f"{value!r} is not one of {options} ({model})"
    if spec.minimum is not None and value < spec.minimum:
        return None, f"{_short(value)} is below the minimum {_number(spec.minimum)} ({model})"
    if spec.maximum is not None and value > spec.maximum:
        return None, f"{_short(value)} is above the maximum {_number(spec.maximum)} ({model})"
    return value, None


def _short(value: Any) -> str:
    """`value` as an error writes it: a whole number of more than 16 digits (a float such as linspace's 5e+307
    made an integer) in the short form the job key gives it, not its hundreds of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**16:
        try:
            return format(float(value), "g")
        except OverflowError:  # past the float range (a 309-digit matrix value, "{{ 2 ** 2000 }}"): the same form
            with decimal.localcontext() as context:
                context.prec = 6
                return format((+decimal.Decimal(value)).normalize(), "g")
    return repr(value)


_MATCH_SECONDS = 1.0
"""How long a rule's `when_matches` pattern may take on one value. Python's own engine backtracks: a pattern whose
repeats can split a text many ways (`(a|aa)+`) takes time doubling with each character on a text it does not
match, for ever on a long prompt. The `regex` engine, which reads patterns as `re` does, stops at this bound."""


def _applies(rule: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether `params` meet the rule's conditions: `when` (equal values), `when_matches` (values whose text
    matches a regular expression in full).

    :raises RuleError: a pattern took longer than `_MATCH_SECONDS` on a value.
    """
    if any(params.get(k) != v for k, v in rule.get("when", {}).items()):
        return False
    return all(k in params and _matches(rule, k, str(pattern), str(params[k]))
               for k, pattern in rule.get("when_matches", {}).items())


def _matches(rule: Mapping[str, Any], name: str, pattern: str, text: str) -> bool:
    """Whether `text`, the value of parameter `name`, matches `pattern` (of `rule`'s `when_matches`) in full."""
    import regex

    try:
        return regex.fullmatch(pattern, text, timeout=_MATCH_SECONDS) is not None
    except TimeoutError:
        shown = text if len(text) <= 60 else f"{text[:48]}…{text[-8:]}"
        raise RuleError(f"{pattern!r} took more than {_MATCH_SECONDS:g} s to match the {name} {shown!r} "
                        f"({len(text):,} characters) and was stopped: a pattern whose repeats can split one text in "
                        "many ways (such as (a|aa)+) takes time doubling with each character of a "
                        "text it does not match; write it so that each character can be matched one way only",
                        rule=rule, at=("when_matches", name)) from None
    except regex.error as exc:  # a pattern `re` compiles, as the file was checked, that `regex` does not
        raise RuleError(f"{pattern!r} is not a regular expression ({exc})", rule=rule,
                        at=("when_matches", name)) from None


def _apply_rule(rule: Mapping[str, Any], params: Mapping[str, Any]) -> Issue | None:
    if not _applies(rule, params):
        return None
    name = rule["param"]
    if "max" in rule and name in params:
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):  # a parameter the data does not type
            raise RuleError(_max_of_text(name, "boolean" if isinstance(value, bool) else "string"), rule=rule,
                            at=("max",))
        if value > rule["max"]:
            return Issue(name, f"{value!r} is too large: {rule['message']}")
    if "requires" in rule and params.get(name) and not params.get(rule["requires"]):
        return Issue(name, rule["message"])
    return None


def _max_of_text(name: str, kind: str) -> str:
    """The error of a rule whose `max` is given for parameter `name`, of type `kind`, which is no number."""
    what = "true or false" if kind == "boolean" else "text"
    return (f"max is given for {name}, a {kind} parameter ({what}); max bounds a number (a parameter of type integer "
            "or number): for text, list the values allowed (enum) or match them (when_matches)")


def _conditions(rule: Mapping[str, Any]) -> set[str]:
    """The parameters a rule's conditions (`when`, `when_matches`) read."""
    return {*rule.get("when", {}), *rule.get("when_matches", {})}


def _overridden(rules: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> set[str]:
    """The parameters of `params` that another decides instead (a rule `ignored: true` whose conditions hold):
    the provider renders and bills as if they were not there, so no other rule's condition may read them."""
    return {rule["param"] for rule in rules
            if rule.get("ignored") and rule["param"] in params and _applies(rule, params)}


def _unused(rule: Mapping[str, Any], params: Mapping[str, Any], given: Mapping[str, Any]) -> Issue | None:
    """A rule `ignored: true`: its param, set in the request (not by its default), is not used when the rule's
    conditions hold (another parameter decides instead); a warning, as the provider takes the request."""
    name = rule["param"]
    if given.get(name) is None or name not in params or not _applies(rule, params):
        return None
    return Issue(name, f"{params[name]!r} is not used: {rule['message']}")


def _warned(rule: Mapping[str, Any], params: Mapping[str, Any], given: Mapping[str, Any]) -> Issue | None:
    """A rule `warn: true`: its param, set in the request (not by its default), is warned of with the rule's
    message when the rule's conditions hold; it is sent, and every other rule applies to it."""
    name = rule["param"]
    if given.get(name) is None or name not in params or not _applies(rule, params):
        return None
    return Issue(name, f"{params[name]!r} {rule['message']}")


@dataclass(frozen=True, slots=True)
class ProviderCaps:
    """A provider's settings and its models."""

    provider: str
    base_url: str
    api_key_env: str | None
    honours_idempotency_keys: bool
    has_list_endpoint: bool
    models: Mapping[str, ModelCaps] = field(default_factory=dict)
    # How long after its first send the provider still answers a key with the video it made (None: for ever).
    # A key older than this is never sent again on gridrun's own account: the provider may make a second video.
    idempotency_window_seconds: float | None = None
    # Whether a video cancelled while still queued (not yet rendering) is not billed: True, False, or None where
    # the provider does not say. Only True lets a message promise that `gridrun cancel` stops queued jobs free.
    queued_cancel_free: bool | None = None

    def model(self, name: str) -> ModelCaps | None:
        return self.models.get(name)


def _read(path: Path) -> dict[str, Any]:
    """A built-in data file."""
    from runner.yamlsource import load_data

    try:
        with open(path, encoding="utf-8") as f:
            data = load_data(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CapabilityDataError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise CapabilityDataError(f"{path}: expected a mapping")
    return data


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
"""Hosts of this machine (a served simulator): a manifest may send the API key there."""
API_ROOTS = ("/openai/v1", "/v1")
"""The paths under which the video API is served, below the API's root (the simulator serves both too)."""


def official_hosts(provider: str) -> tuple[str, ...]:
    """The origins (`https://api.lumenfall.ai`) of `provider`'s built-in base URL and of those it extends; none for
    a provider whose own base URL is no web address (the simulator, `inprocess://`): it runs on this machine, and
    the host of the provider it copies is not its own."""
    own = builtin_base_url(provider)
    if own and not has_http_scheme(own):
        return ()
    out = []
    for name in _lineage(provider):
        url = builtin_base_url(name)
        origin = _origin(url)
        if origin and url.startswith(("http://", "https://")) and origin not in out:
            out.append(origin)
    return tuple(out)


def _origin(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def address_problem(url: str) -> str | None:
    """Why `url` names no server a request can reach (a control character or white space, a lone surrogate, no
    host, a port out of range, empty or 0, a bracket left open), None when it names one. Its scheme is judged
    elsewhere. Both base URLs and input images given as URLs are checked so: a request to such a URL cannot be
    made, and an image the provider cannot fetch would be billed all the same."""
    from urllib.parse import urlsplit

    bad = next((c for c in url if ord(c) < 0x21 or 0x7F <= ord(c) <= 0x9F or c.isspace()), None)
    if bad is not None:
        if bad == " ":
            return "it holds a space"
        return f"it holds the {'white space' if bad.isspace() else 'control'} character {bad!r}"
    surrogate = next((c for c in url if 0xD800 <= ord(c) <= 0xDFFF), None)
    if surrogate is not None:  # no text: it cannot be written as UTF-8, so neither sent nor shown
        return (f"it holds a lone surrogate ({ascii(surrogate)[1:-1]}: half of a \\u escape pair, or a byte that is "
                "not UTF-8), which is not text; write the character itself")
    # The parser's own words are not quoted unless known: they may quote the URL, and a password's start with it.
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return "it does not parse (Invalid IPv6 URL)" if str(exc) == "Invalid IPv6 URL" else "it does not parse"
    try:
        port = parts.port
    except ValueError:
        return "it does not parse (its port, after the host's ':', is not a number from 0 to 65535)"
    if parts.scheme in ("http", "https") and not parts.hostname:
        return "it has no host"
    if parts.netloc.rpartition("@")[2].endswith(":"):
        return "its port is empty (nothing after the ':')"
    if port == 0:
        return "its port is 0"
    return None


def url_problem(url: str) -> str | None:
    """Why `url` is not a base URL requests can be sent to (`address_problem`, or a path or query the requests'
    own paths cannot follow), None when it is one. Its scheme is judged elsewhere."""
    problem = address_problem(url)
    if problem is not None:
        return problem
    from urllib.parse import urlsplit

    if urlsplit(url).path.rstrip("/").rpartition("/")[2].lower() == "videos" and not has_query(url):
        # pasted whole from an API's documentation (`POST https://api.lumenfall.ai/v1/videos`): every create
        # would go to .../videos/videos, which the API has for GET only
        return ("it ends in /videos, the path of the create request, which gridrun adds to the base URL itself: "
                "drop the trailing /videos")
    if has_query(url):
        return ("it has a query or a fragment (after '?' or '#', not shown: it may hold a credential), which a base URL "
                "cannot keep: each request's path is added to the URL's own, so every request would miss the API. "
                "Write the URL without it; gridrun sends the API key as the Authorization header, never in the URL")
    return None


def has_query(url: str) -> bool:
    """Whether `url` has a query or a fragment (`?token=...`, `#...`), empty ones too."""
    return "?" in url or "#" in url


def without_query(url: str) -> str:
    """`url` as it may be shown: what follows its first '?' or '#' (a query may hold a credential) left out."""
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    return url if cut < 0 else url[:cut] + url[cut] + "…"


def has_http_scheme(url: str) -> bool:
    """Whether `url` begins http:// or https://, the scheme in any case (HTTP://: schemes are case-insensitive)."""
    return url[:8].lower().startswith(("http://", "https://"))


def url_error(url: str) -> str | None:
    """`url_problem`, or a scheme other than http(s) (in any case: schemes are case-insensitive), said as the
    error's text after the URL's source."""
    if url != url.strip():
        return "has white space before or after it; write the URL alone"
    if not has_http_scheme(url):
        return "must start with http:// or https://"
    problem = url_problem(url)
    return f"is not a valid URL: {problem}" if problem is not None else None


def is_loopback(url: str) -> bool:
    """Whether `url` names this machine (127.0.0.1, ::1, localhost)."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return False
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_USER_PASSWORD = re.compile(r"[^/?#@:]*:[^@]*@")
"""The start of what follows a URL's `scheme://` when it is `user:password@`, the password holding any character."""

_PORT_ENDS = re.compile(r"[0-9]{1,5}(?:[/?#]|$)")
"""What follows a host's ':' when it is a port, then the end of the host."""


def has_credentials(url: str) -> bool:
    """Whether `url` holds a user name or password (`http://user:pass@host/`). Here, not beside the HTTP client:
    planning a manifest with a `base_url:` asks it, and importing httpx for that cost a plan (and a run, which
    loaded it with its command line then) tens of milliseconds."""
    from urllib.parse import urlsplit

    if "://" not in url:
        # no scheme (`bob:pw@gw.example/v1`, a typo'd `https//bob:pw@...`): no netloc to parse, so any '@' before
        # the query counts, the URL refused without being shown as one without a scheme would be
        return "@" in url.split("?", 1)[0].split("#", 1)[0]
    rest = url.strip().partition("://")[2]
    if _USER_PASSWORD.match(rest) and not _PORT_ENDS.match(rest.partition(":")[2]):
        # read as written, before parsing: a '/', '#' or '?' in a password, not percent-encoded, ends the host
        # early for the parser (`user:pass/word@host` has the host `user`), which then finds no '@' in it. A
        # port and what ends the host after it (`host:8443/fox@2x.png`, `host:8000/v1?by=a@b.com`) is read by
        # the parser below: an '@' in a path or query is no password
        return True
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (a port that does not parse: maybe a password's start, the host cut short)
    except ValueError:
        return "@" in rest
    return "@" in parts.netloc


CREDENTIALS_REFUSED = ("holds a user name or password (`user:pass@` before its host), which gridrun does not send: "
                       "it sends the API key as the Authorization header; remove them from the URL")
"""Why a base URL with credentials is refused; the URL is not shown."""


def untrusted_base_url(url: str, provider: str, key_env: str | None, env: str | None) -> str | None:
    """Why a base URL a file chose (a manifest's `base_url:`, a capabilities file's) may not be used: None when it
    is `provider`'s own host or this machine's; otherwise the message, which says where the key would go."""
    if has_credentials(url):  # the URL is not shown: what is before the '@' is a password
        return CREDENTIALS_REFUSED
    if is_loopback(url) or (_origin(url) is not None and _origin(url) in official_hosts(provider)):
        return None
    where = _origin(url) or repr(without_query(url))
    shown = repr(without_query(url))  # a query may hold a credential
    if not official_hosts(provider):
        return (f"{shown} would send the requests to {where}, not to this machine (127.0.0.1, ::1, localhost): "
                f"{provider} is gridrun's simulator, which runs here (in process, or served by `gridrun sim serve` "
                "at the address it prints); for a provider's own API, name that provider in `provider:`")
    official = " or ".join(official_hosts(provider))
    what = f"the API key ({key_env})" if key_env else "the requests"
    proxy = (f"; to go through a proxy or gateway of your own, set {env} in the environment" if env else
             "; a served simulator runs on this machine (127.0.0.1)")
    return (f"{shown} would send {what} to {where}, which is neither {provider}'s own API ({official}) nor this "
            f"machine (127.0.0.1, ::1, localhost): a file may choose only those{proxy}")


def not_regular(path: Path) -> str | None:
    """Why the capabilities file at `path` is not read, when it is a named pipe, a socket or a device, which
    reading could wait on for ever (opening a named pipe waits for a writer), found before it is opened: "is a
    named pipe, not a regular file ..."; None for a regular file, a folder or none there (which reading it says)."""
    from runner.images import special_kind

    try:
        kind = special_kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None
    if kind is None:
        return None
    if kind == "a named pipe" and os.path.basename(os.path.realpath(path)).startswith("pipe:"):
        kind = "a pipe"  # no name of its own: standard input (/dev/stdin, /dev/fd/0) or `<(...)` piped in
    return (f"is {kind}, not a regular file: a pipe or a device, such as standard input (/dev/stdin), cannot be read "
            "as a capabilities file, which is read from a file saved whole; write its text to a file and name that "
            "file instead")


def _check_regular(path: Path) -> None:
    """:raises ManifestError: `path` is no regular file (`not_regular`), naming it."""
    why = not_regular(path)
    if why is not None:
        raise ManifestError(why, file=path)


def check_user_file(path: Path, *, key_env: str | None = None, env: str | None = None) -> None:
    """A capabilities file a manifest names may not move the API key: its `base_url` must be the provider's own
    host or this machine, and it may not set `api_key_env` for a provider gridrun ships (which variable is sent
    as the key is gridrun's or the environment's choice, not a file's).

    :raises ManifestError: at the field's line.
    """
    from runner import yamlsource

    _check_regular(path)
    text = yamlsource.read_text(path, limit=yamlsource.MAX_BYTES)
    document, positions = yamlsource.load_yaml(text, file=path)
    if not isinstance(document, dict):
        return
    provider = str(document.get("provider"))

    def error(name: str, message: str) -> ManifestError:
        line, column = yamlsource.locate(positions, (name,))
        return ManifestError(message, file=path, line=line, column=column, field=name)

    if "api_key_env" in document and provider in available():
        raise error("api_key_env", f"a capabilities file may not choose the variable sent as {provider}'s API key "
                                   f"(gridrun sends {key_env or 'none'}); remove this line")
    url = document.get("base_url")
    if isinstance(url, str):
        why = untrusted_base_url(url, provider, key_env, env)
        if why is not None:
            raise error("base_url", why)


def user_data(path: Path) -> dict[str, Any]:
    """A user's capabilities file, as read (checked against the schema)."""
    return _read_user(path)


def last_pricing(provider: str, model: str, files: Sequence[Path]) -> int | None:
    """The index in `files` (user capabilities files) of the last that sets the prices of `model`, for `provider` or
    a provider it extends; None where none does. Never raises: a file that cannot be read now is passed over."""
    lineage = _lineage(provider) if provider in available() else (provider,)
    found = None
    for index, f in enumerate(files):
        try:
            data = _read_user(Path(f))
        except (GridrunError, OSError, ValueError):
            continue
        entry = (data.get("models") or {}).get(model) if isinstance(data.get("models"), dict) else None
        if data.get("provider") in lineage and isinstance(entry, dict) and "prices" in entry:
            found = index
    return found


def prices_from(provider: str, model: str, names: Sequence[Any] = (), base_dir: Path | None = None) -> str:
    """Where the prices of `model` come from, as a note names it: the last user file that sets them (of
    GRIDRUN_CAPABILITIES, then the manifest's `names`, relative to `base_dir`), else gridrun's built-in file. Never
    raises: a file that cannot be read now is passed over."""
    lineage = _lineage(provider) if provider in available() else (provider,)
    named = [Path(p) for p in os.environ.get("GRIDRUN_CAPABILITIES", "").split(os.pathsep) if p]
    files = [*named, *(Path(base_dir or ".") / str(n) for n in names)]
    index = last_pricing(provider, model, files)
    if index is not None:
        found = files[index]
        return f"capabilities file {found.resolve() if found.exists() else found}"
    for name in lineage:
        path = _builtin(name)
        entry = ((_read(path).get("models") or {}).get(model) or {}) if path is not None else {}
        if "prices" in entry:
            return f"gridrun's built-in capabilities file {path.name}, as of {entry['prices'].get('as_of', '?')}"
    return "gridrun's built-in capability data"


# How a parameter's default that a file named in GRIDRUN_CAPABILITIES sets is said (`default_files`): the end of
# its source, `default (caps.yaml, from GRIDRUN_CAPABILITIES)`.
FROM_ENVIRONMENT = ", from GRIDRUN_CAPABILITIES"


def default_files(provider: str, model: str, names: Sequence[Any] = (), base_dir: Path | None = None) -> dict[str, str]:
    """The parameters of `model` whose default a user's capabilities file sets, each with the last file that sets
    it as named (of GRIDRUN_CAPABILITIES, said so, then the manifest's `names`, relative to `base_dir`): "caps.yaml,
    from GRIDRUN_CAPABILITIES". A default that comes from outside the manifest (a variable exported for another
    project) changes every job's request, and so its hash and price: where it comes from is said. Never raises: a
    file that cannot be read now is passed over."""
    env = os.environ.get("GRIDRUN_CAPABILITIES", "")
    if not env and not names:
        return {}
    lineage = _lineage(provider) if provider in available() else (provider,)
    files = [(Path(p), f"{p}{FROM_ENVIRONMENT}") for p in env.split(os.pathsep) if p]
    files += [(Path(base_dir or ".") / str(n), str(n)) for n in names]
    out: dict[str, str] = {}
    for f, said in files:
        try:
            data = _read_user(f)
        except (GridrunError, OSError, ValueError):
            continue
        models = data.get("models")
        entry = models.get(model) if isinstance(models, dict) else None
        params = entry.get("params") if isinstance(entry, dict) else None
        if data.get("provider") not in lineage or not isinstance(params, dict):
            continue
        for name, spec in params.items():
            if isinstance(spec, dict) and "default" in spec:
                out[str(name)] = said
    return out


def builtin_base_url(provider: str) -> str:
    """The base URL of `provider`'s built-in data, "" for none."""
    path = _builtin(provider)
    return str(_read(path).get("base_url") or "") if path is not None else ""


def _read_user(path: Path) -> dict[str, Any]:
    """A user's capabilities file, checked against the schema of such files: an unknown or misspelled field (which
    would be ignored, its intended effect lost) and a value of the wrong type (`honours_idempotency_keys: no`, the
    string "no", read as true) are refused at their line, as a manifest's are.

    :raises ManifestError: or ManifestErrors (several), naming the file, line, column and field.
    """
    from runner import yamlsource
    from runner.manifest import schema_errors

    _check_regular(path)
    text = yamlsource.read_text(path, limit=yamlsource.MAX_BYTES)
    document, positions = yamlsource.load_yaml(text, file=path)  # keys as text, with positions: to check, to locate

    def error(at: tuple[Any, ...], message: str) -> ManifestError:
        line, column = yamlsource.locate(positions, at)
        return ManifestError(message, file=path, line=line, column=column, field=yamlsource.dotted(at))

    errors = schema_errors(_user_schema(), document, error)
    if not errors:
        errors = [error(at, message) for at, message in _finer_than_micros(document)]
    if isinstance(document, dict):
        errors.extend(_setting_errors(document, error))
    yamlsource.raise_all(sorted(errors, key=lambda e: (e.line, e.column)))
    data: dict[str, Any] = yamlsource.load_plain(text)  # keys keep their types (a duration factor's 5 is 5)
    return data


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _setting_errors(document: Mapping[str, Any], error: Callable[[tuple[Any, ...], str], ManifestError]) -> list[ManifestError]:
    """A file's `base_url` that is no URL requests can be sent to, and an `api_key_env` that is no environment
    variable's name (an empty one would send no key at all), each at its line."""
    out = []
    url = document.get("base_url")
    provider = document.get("provider")
    if isinstance(url, str) and isinstance(provider, str) and provider in available() \
            and url.rstrip("/") == builtin_base_url(provider).rstrip("/"):
        url = None  # gridrun's own for that provider, such as the simulator's in-process address
    if isinstance(url, str):
        problem = url_error(url.rstrip("/"))  # judged as a run sends to it: surrounded by spaces, refused here
        if problem is not None:  # a URL with a password is not shown
            shown = "the URL" if has_credentials(url) or "@" in url else repr(without_query(url))
            out.append(error(("base_url",), f"{shown} {problem}"))
    key_env = document.get("api_key_env")
    if isinstance(key_env, str) and not _ENV_NAME.fullmatch(key_env):
        out.append(error(("api_key_env",), f"expected an environment variable name (letters, digits, _), got {key_env!r}"))
    return out


@lru_cache(maxsize=1)
def _user_schema() -> Any:
    from runner.manifest import schema_validator
    from runner.resources import resource_dir

    return schema_validator(resource_dir("schemas") / "capabilities.schema.json")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _builtin(provider: str) -> Path | None:
    """The built-in data file of `provider`, None for a name that is not one of `available()`: a manifest's
    name is never made into a path (one too long for the file system, or holding a '/' or a NUL byte)."""
    return DATA_DIR / f"{provider}.yaml" if provider in available() else None


def _raw(provider: str, extra: Sequence[Path], chain: tuple[tuple[str, Path | None], ...] = ()
         ) -> dict[str, Any] | None:
    """`provider`'s data: the built-in file merged with the user files for it, then merged onto the data of the
    provider it `extends`. `chain` holds the providers whose `extends` led here, each with the file its
    `extends` came from: a user file's `extends` replaces the built-in one, and may lead back to a provider of
    the chain.

    :raises ManifestError: a user file's `extends` makes a cycle or names no provider, at its line.
    """
    path = _builtin(provider)
    data: dict[str, Any] | None = _read(path) if path is not None else None
    origin = path if data is not None and "extends" in data else None
    env = os.environ.get("GRIDRUN_CAPABILITIES", "")
    named = [Path(p) for p in env.split(os.pathsep) if p]
    for f in named + list(extra):
        try:
            more = _read_user(f)
        except ManifestError as exc:
            if f not in named or exc.line:
                raise
            # a file that cannot be read at all: where its name came from, which no manifest shows
            raise ManifestError(f"{exc.message} (named by GRIDRUN_CAPABILITIES)", file=exc.file) from None
        if more.get("provider") == provider:
            data = _merge(data or {}, more)
            origin = f if "extends" in more else origin
    if data is None:
        return None
    parent = data.pop("extends", None)
    if parent:
        parent = str(parent)
        chain = (*chain, (provider, origin))
        names = [name for name, _ in chain]
        if parent in names:
            raise _cycle(chain[names.index(parent):])
        base = _raw(parent, extra, chain)
        if base is None:
            known = ", ".join(available())
            raise _extends_error(origin, f"provider {provider!r} extends unknown provider {parent!r} (known: {known})")
        data = _merge(base, data)
    return data


def _cycle(links: tuple[tuple[str, Path | None], ...]) -> Exception:
    """The error of `extends` that lead back to the first provider of `links` (each: a provider and the file its
    `extends` came from), told at the last user file's `extends` of the cycle, the one that closed it (built-in
    data never makes one alone)."""
    names = [name for name, _ in links]
    at = max((i for i, (_, origin) in enumerate(links) if _is_user_file(origin)), default=len(links) - 1)
    names = names[at:] + names[:at]  # the cycle from the provider whose file is told
    if len(names) == 1:
        message = f"provider {names[0]!r} extends itself"
    elif len(names) == 2:
        message = f"provider {names[0]!r} extends {names[1]!r}, which extends it back"
    else:
        message = (f"provider {names[0]!r} extends {names[1]!r}, which leads back to it: "
                   f"{' -> '.join([*names, names[0]])}")
    return _extends_error(links[at][1], message)


def _is_user_file(path: Path | None) -> bool:
    return path is not None and path.parent != DATA_DIR


def _extends_error(origin: Path | None, message: str) -> Exception:
    """`message` told at the `extends:` line of `origin`, a user's file; of built-in data, as a data error."""
    if origin is None or not _is_user_file(origin):
        return CapabilityDataError(message)
    from runner import yamlsource

    _, positions = yamlsource.load_yaml(yamlsource.read_text(origin, limit=yamlsource.MAX_BYTES), file=origin)
    line, column = yamlsource.locate(positions, ("extends",))
    return ManifestError(message, file=origin, line=line, column=column, field="extends")


def available() -> list[str]:
    """The providers with built-in capability data."""
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml"))


def load(provider: str, *, extra: Sequence[Path] = ()) -> ProviderCaps | None:
    """Capabilities of `provider`, built-in data merged with user files; None when the provider is unknown.

    :raises CapabilityDataError: a file is malformed in a way only the merged data shows (a price missing for a
        quality its parameters allow); a file of `extra` is not for `provider`.
    :raises ManifestError: or ManifestErrors: a user's file is not YAML, or a field of it is unknown or of the wrong
        type (naming its file, line and field).
    """
    for f in extra:
        named = _read_user(Path(f)).get("provider")
        lineage = _lineage(provider)
        if named not in lineage:
            raise CapabilityDataError(
                f"{f}: names no provider (`provider: {provider}`)" if named is None else
                f"{f}: is for provider {named!r}, not {' or '.join(map(repr, lineage))}")
    try:
        return _load(provider, tuple(Path(p) for p in extra), os.environ.get("GRIDRUN_CAPABILITIES", ""))
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        raise CapabilityDataError(f"malformed capability data for {provider}: {type(exc).__name__}: {exc}") from exc


def param_names(provider: Any, model: Any) -> dict[str, tuple[str, bool]]:
    """Every name a request parameter of `model` goes by in `provider`'s built-in capability data (its own,
    another name the provider takes, another provider's name for it) -> the parameter's own name, and whether the
    provider takes the name as it is: what a manifest's field unknown where it is written (`seed:` at the top
    level) is looked up in, to be told to go under `params:`. Of every model of the provider when the model is not
    one of its (or not a name), of every built-in provider when the provider is not one (`manifest.ParamNames`)."""
    from runner.manifest import DEFAULT_PROVIDER

    known = available()
    providers = [str(provider or DEFAULT_PROVIDER)]
    if providers[0] not in known:
        providers = known
    models = []
    for name in providers:
        caps = load(name)
        if caps is None:
            continue
        own = caps.model(model) if isinstance(model, str) else None
        models += [own] if own is not None else list(caps.models.values())
    out: dict[str, tuple[str, bool]] = {}
    for each in models:
        for name in each.params:
            out.setdefault(name, (name, True))
        for other, name in each.aliases.items():
            out.setdefault(other, (name, True))
        for other, name in each.other_names.items():
            out.setdefault(other, (name, False))
    return out


@lru_cache(maxsize=8)
def _lineage(provider: str) -> tuple[str, ...]:
    """`provider` and the built-in providers it extends (sim extends lumenfall): data for any of them applies.
    Read once per process, and only for a manifest with capability files (parsing the data costs ~8 ms)."""
    out = [provider]
    while True:
        path = _builtin(out[-1])
        parent = _read(path).get("extends") if path is not None else None
        if not parent or str(parent) in out:
            return tuple(out)
        out.append(str(parent))


@lru_cache(maxsize=32)
def _load(provider: str, extra: tuple[Path, ...], _env: str) -> ProviderCaps | None:
    data = _raw(provider, extra)
    if data is None:
        return None
    models = {}
    for mname, m in (data.get("models") or {}).items():
        specs = {}
        for pname, p in (m.get("params") or {}).items():
            if p.get("type") not in _SCALAR_TYPES:
                raise CapabilityDataError(f"{provider}/{mname}/{pname}: unknown type {p.get('type')!r}")
            specs[pname] = ParamSpec(
                name=pname,
                type=p["type"],
                description=p.get("description", ""),
                enum=tuple(p["enum"]) if "enum" in p else None,
                default=p.get("default"),
                required=bool(p.get("required", False)),
                minimum=p.get("minimum"),
                maximum=p.get("maximum"),
                modes=tuple(p.get("modes", ("t2v", "i2v"))),
                aliases=_aliases(f"{provider}/{mname}/{pname}", p.get("aliases")),
                other_names=_aliases(f"{provider}/{mname}/{pname}", p.get("other_names"), "other_names"),
                max_length=_count(f"{provider}/{mname}/{pname}", "max_length", p.get("max_length")),
                max_bytes=_count(f"{provider}/{mname}/{pname}", "max_bytes", p.get("max_bytes")),
                routes=_aliases(f"{provider}/{mname}/{pname}", p.get("routes"), "routes"),
            )
        for rule in m.get("rules") or ():
            spec = specs.get(rule.get("param")) if "max" in rule else None
            if spec is not None and spec.type not in ("integer", "number"):
                raise RuleError(_max_of_text(rule["param"], spec.type), rule=rule, at=("max",), provider=provider,
                                model=mname)
            for pname, pattern in (rule.get("when_matches") or {}).items():
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    raise CapabilityDataError(f"{provider}/{mname}: a rule's when_matches.{pname}: {pattern!r} is not "
                                              f"a regular expression ({exc})") from None
        models[mname] = ModelCaps(
            provider=provider,
            model=mname,
            params=specs,
            tier_sizes=m.get("tier_sizes") or {},
            rules=tuple(m.get("rules") or ()),
            prices=m.get("prices") or {},
            description=m.get("description", ""),
            render_seconds=_render_seconds(f"{provider}/{mname}", m.get("render_seconds")),
            aliases=_alias_map(f"{provider}/{mname}", specs),
            other_names=_other_names(specs),
        )
    return ProviderCaps(
        provider=provider,
        base_url=str(data.get("base_url", "")),
        api_key_env=data.get("api_key_env"),
        honours_idempotency_keys=bool(data.get("honours_idempotency_keys", False)),
        has_list_endpoint=bool(data.get("has_list_endpoint", False)),
        models=models,
        idempotency_window_seconds=_window(provider, data.get("idempotency_window_seconds")),
        queued_cancel_free=None if data.get("queued_cancel_free") is None else data["queued_cancel_free"] is True,
    )


def _aliases(where: str, names: Any, key: str = "aliases") -> tuple[str, ...]:
    """A parameter's `aliases` (or `other_names`): a list of names. :raises CapabilityDataError: anything else."""
    if names is None:
        return ()
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise CapabilityDataError(f"{where}: {key}: expected a list of names, got {names!r}")
    return tuple(names)


def _count(where: str, key: str, value: Any) -> int | None:
    """A parameter's `max_length` or `max_bytes`: a whole number > 0, or null (no limit).

    :raises CapabilityDataError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CapabilityDataError(f"{where}: {key}: expected a whole number > 0 or null, got {value!r}")
    return value


def _other_names(specs: Mapping[str, ParamSpec]) -> dict[str, str]:
    """Another provider's name -> the parameter it stands for here. A name that is a parameter of its own (in a
    user's capabilities file, say) or an alias of one is that, not another provider's; of two parameters that
    claim one name, the first keeps it."""
    taken = set(specs) | {a for spec in specs.values() for a in spec.aliases}
    out: dict[str, str] = {}
    for name, spec in specs.items():
        for other in spec.other_names:
            if other not in taken:
                out.setdefault(other, name)
    return out


def _alias_map(where: str, specs: Mapping[str, ParamSpec]) -> dict[str, str]:
    """Another name -> the parameter it stands for. A name declared as a parameter of its own (in a user's
    capabilities file, say) is that parameter, not an alias.

    :raises CapabilityDataError: two parameters claim one name.
    """
    out: dict[str, str] = {}
    for name, spec in specs.items():
        for alias in spec.aliases:
            if alias in out and out[alias] != name:
                raise CapabilityDataError(f"{where}: '{alias}' is an alias of both '{out[alias]}' and '{name}'")
            if alias not in specs:
                out[alias] = name
    return out


def _window(provider: str, value: Any) -> float | None:
    """`idempotency_window_seconds`: a number of seconds > 0, or null (keys are never forgotten).

    :raises CapabilityDataError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value <= 0:
        raise CapabilityDataError(f"{provider}: idempotency_window_seconds: expected a number of seconds > 0 or null, "
                                  f"got {value!r}")
    return float(value)


def _render_seconds(where: str, value: Any) -> float | None:
    """A model's `render_seconds`: a number of seconds > 0, or null (polls start at the default).

    :raises CapabilityDataError: anything else (NaN or infinity would schedule polls at no time at all).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value <= 0:
        raise CapabilityDataError(f"{where}: render_seconds: expected a number of seconds > 0 or null, got {value!r}")
    return float(value)


def _numeric(text: str) -> bool:
    """Whether `text` reads as a number ("5", " 8.0 "), or is blank."""
    try:
        float(text.strip())
    except ValueError:
        return not text.strip()
    return True


def _number(value: float) -> str:
    """A bound as written: 2147483647, not 2.14748e+09."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _check_prices(where: str, prices: Any, specs: Mapping[str, ParamSpec]) -> None:
    """A model's price table: every figure a number >= 0, and a price for every quality and a factor for
    every duration its parameters allow (a job would otherwise be priced wrong, or fail to be priced), in
    `audio_duration_factor` too when the table has one (without it, audio is scaled by `duration_factor`).

    :raises CapabilityDataError: naming the model and the figure.
    """
    if not isinstance(prices, Mapping):
        raise CapabilityDataError(f"{where}: prices: expected a mapping with base_5s and duration_factor, got {prices!r}")
    for table in ("base_5s", "duration_factor", "audio_5s", "audio_duration_factor"):
        figures = prices.get(table)
        if figures is None and table in ("audio_5s", "audio_duration_factor"):
            continue
        if not isinstance(figures, Mapping) or not figures:
            raise CapabilityDataError(f"{where}: prices.{table}: expected a mapping of figures, got {figures!r}")
        for key, value in figures.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value < 0:
                raise CapabilityDataError(f"{where}: prices.{table}.{key}: expected a number >= 0, got {value!r}")
            if table in MONEY_TABLES and _finer_than_micro(value):
                raise CapabilityDataError(f"{where}: prices.{table}.{key}: {_finer_message(value)}")
    checked = (("quality", "base_5s"), ("duration", "duration_factor"), ("duration", "audio_duration_factor"))
    for param, table in checked:
        spec = specs.get(param)
        if prices.get(table) is None:  # audio_duration_factor: optional, duration_factor stands in
            continue
        missing = [v for v in (spec.enum or ()) if v not in prices[table]] if spec is not None else []
        if missing:
            raise CapabilityDataError(f"{where}: prices.{table} has no figure for {param} {', '.join(map(repr, missing))}")


MONEY_TABLES = ("base_5s", "audio_5s")
"""The tables of a model's prices whose figures are US dollars (the others are factors)."""

FINEST_STEP = "$0.000001"


def _finer_than_micro(value: Any) -> bool:
    """Whether a price in USD has digits past the sixth decimal: costs are counted in whole micro-USD, and such a
    figure would be cut on every job, so that a plan of many jobs would cost more than it says."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and _finite(value) \
        and int(Decimal(str(value)).normalize().as_tuple().exponent) < -6


def _finer_than_micros(document: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Each price of a (schema-valid) capabilities document finer than a micro-USD: its path, and why."""
    out: list[tuple[tuple[Any, ...], str]] = []
    models = document.get("models") if isinstance(document, Mapping) else None
    for name, model in (models or {}).items():
        prices = model.get("prices") if isinstance(model, Mapping) else None
        for table in MONEY_TABLES:
            figures = prices.get(table) if isinstance(prices, Mapping) else None
            for key, value in (figures or {}).items():
                if _finer_than_micro(value):
                    out.append((("models", name, "prices", table, key), _finer_message(value)))
    return out


def _finer_message(value: Any) -> str:
    return (f"{value!r} is finer than gridrun counts money: the finest step is {FINEST_STEP} (a micro-USD); "
            f"give the price to at most six decimals")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False
