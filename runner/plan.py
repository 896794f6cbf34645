"""The plan: a manifest expanded into jobs with keys, hashes, costs and output paths.

`build()` is pure but for one injected callback that hashes local input files; it touches no network,
state or clock. `diff()` compares a plan with what the state store holds.
"""

from __future__ import annotations

import gc
import hashlib
import json
import operator
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from .errors import CapabilityError, ManifestError, ManifestErrors, MatrixError, TemplateError
from .manifest import Manifest, dotted
from .matrix import Combination, Expansion, expand
from .providers.capabilities import Checked, ModelCaps, ProviderCaps
from .template import Compiled, TemplateProblem, compile_value, dependents, var_order

DEFAULT_MAX_JOBS = 1000
DEFAULT_OUTPUT = "{{ key }}.mp4"
IMAGE_PARAMS = ("input_reference", "last_frame_image")
_MAX_REPORTED = 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+@#%-]+")
_SAFE_REL = re.compile(r"(?!\.\.?(?:/|$))[A-Za-z0-9_=,+@#%-][A-Za-z0-9._=,+@#%-]*(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._=,+@#%-]+)*")


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

    def record(self) -> dict[str, Any]:
        """The mapping `Store.add_jobs` takes."""
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


@dataclass(frozen=True, slots=True)
class Plan:
    """Every job of a manifest, in order, with totals."""

    manifest: Manifest
    provider: str
    model: str
    jobs: tuple[Job, ...]
    excluded: tuple[tuple[str | None, Combination, int], ...]
    axes: tuple[str, ...]                   # matrix keys in order of first appearance
    varying: tuple[str, ...]                # of those, the ones with more than one value or missing from some jobs
    warnings: tuple[str, ...]
    total_micros: int
    outputs_dir: Path
    state_dir: Path
    budget_micros: int | None
    max_jobs: int

    @property
    def total_usd(self) -> float:
        return self.total_micros / 1_000_000


# --------------------------------------------------------------------------------------------------


def outputs_dir_of(manifest: Manifest) -> Path:
    raw = manifest.data.get("outputs_dir")
    base = manifest.base_dir
    return (base / raw).resolve() if raw else (base / "outputs" / manifest.name).resolve()


def state_dir_of(manifest: Manifest) -> Path:
    raw = manifest.data.get("state_dir")
    return (manifest.base_dir / raw).resolve() if raw else (manifest.base_dir / ".gridrun").resolve()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=isinstance(value, dict))
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) > 40:
        digest = hashlib.sha256(text.encode()).hexdigest()[:6]
        text = f"{text[:32]}…{digest}"
    return text


def job_key(sweep: str | None, values: Iterable[tuple[str, Any]], repeat: int) -> str:
    body = ",".join(f"{k}={format_value(v)}" for k, v in values) or "job"
    key = f"{sweep}/{body}" if sweep else body
    return f"{key}#{repeat}" if repeat else key


_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def _canonical(value: Any) -> str:
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


def job_hash(provider: str, model: str, params: Mapping[str, Any], repeat: int) -> str:
    """SHA-256 of what the provider receives and bills; local files enter by their content digest.

    The text hashed is the canonical JSON (sorted keys, no spaces, UTF-8) of
    {"model", "params", "provider", "repeat"}.
    """
    text = f'{{"model":{_canonical(model)},"params":{_canonical(params)},"provider":{_canonical(provider)},"repeat":{repeat}}}'
    return hashlib.sha256(text.encode()).hexdigest()


class _Collector:
    """Gathers errors so that one pass reports many, each once, with how many jobs it hits."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str, int, int], tuple[ManifestError, list[tuple[str, str | None]]]] = {}
        self.one_job = False            # a plan of one job: naming it adds nothing

    def add(self, err: ManifestError, job: str | None = None, detail: str | None = None) -> None:
        """Record `err`, once; `job` is the key of a job it hits, `detail` what differs from job to job."""
        k = (err.field, err.message, err.line, err.column)
        if k not in self.errors:
            self.errors[k] = (err, [])
        if job is not None:
            self.errors[k][1].append((job, detail))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        out: list[ManifestError] = []
        found = sorted(self.errors.values(), key=lambda e: (e[0].line, e[0].column))
        for err, jobs in found[:_MAX_REPORTED]:
            if jobs:
                key, detail = jobs[0]
                example = f"{key}: {detail}" if detail else key
                if self.one_job:
                    more = detail or ""
                elif len(jobs) > 1:
                    more = f"in {len(jobs):,} jobs, e.g. {example}"
                else:
                    more = f"in job {example}"
                if more:
                    err = type(err)(f"{err.message} ({more})", file=err.file, line=err.line, column=err.column,
                                    field=err.field)
            out.append(err)
        if len(self.errors) > _MAX_REPORTED:
            first = out[0]
            out.append(ManifestError(f"... and {len(self.errors) - _MAX_REPORTED} more errors", file=first.file))
        raise out[0] if len(out) == 1 else ManifestErrors(out)


@dataclass(slots=True)
class _Sweep:
    name: str | None
    index: int | None
    matrix: Mapping[str, Any] | None
    vars: dict[str, Any]
    params: dict[str, Any]
    repeat: int
    output: str
    var_paths: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    param_paths: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    output_path: tuple[Any, ...] = ("output",)

    @property
    def prefix(self) -> tuple[Any, ...]:
        return () if self.index is None else ("sweeps", self.index)


def _sweeps(m: Manifest) -> list[_Sweep]:
    top_vars = dict(m.vars or {})
    top_params = dict(m.params or {})
    output = m.output or DEFAULT_OUTPUT
    if not m.sweeps:
        s = _Sweep(None, None, m.matrix, top_vars, top_params, int(m.repeat or 1), output)
        s.var_paths = {k: ("vars", k) for k in top_vars}
        s.param_paths = {k: ("params", k) for k in top_params}
        return [s]
    out = []
    for i, sw in enumerate(m.sweeps):
        vars_ = {**top_vars, **(sw.get("vars") or {})}
        params = {**top_params, **(sw.get("params") or {})}
        s = _Sweep(sw["name"], i, sw.get("matrix"), vars_, params, int(sw.get("repeat") or m.repeat or 1),
                   sw.get("output") or output)
        s.var_paths = {k: (("sweeps", i, "vars", k) if k in (sw.get("vars") or {}) else ("vars", k)) for k in vars_}
        s.param_paths = {k: (("sweeps", i, "params", k) if k in (sw.get("params") or {}) else ("params", k)) for k in params}
        s.output_path = ("sweeps", i, "output") if sw.get("output") else ("output",)
        out.append(s)
    return out


def _matrix_path(sweep: _Sweep, source: str, key: str) -> tuple[Any, ...]:
    base = sweep.prefix + ("matrix",)
    if source.startswith("include "):
        try:
            return base + ("include", int(source.split()[1]) - 1, key)
        except (ValueError, IndexError):
            return base
    return base + (key,)


def build(
    manifest: Manifest,
    caps: ProviderCaps,
    *,
    max_jobs: int | None = None,
    outputs_dir: Path | None = None,
    digest: Callable[[Path], str] = file_sha256,
) -> Plan:
    """Expand, render, check and price every job of `manifest`.

    :raises ManifestError: (or ManifestErrors, several at once) for anything invalid, before any paid call.
    """
    # Planning allocates many long-lived objects and no cycles: the cyclic collector would only rescan them.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(manifest, caps, max_jobs=max_jobs, outputs_dir=outputs_dir, digest=digest)
    finally:
        if was_enabled:
            gc.enable()


def _build(
    manifest: Manifest,
    caps: ProviderCaps,
    *,
    max_jobs: int | None,
    outputs_dir: Path | None,
    digest: Callable[[Path], str],
) -> Plan:
    errors = _Collector()
    model = caps.model(manifest.model)
    if model is None:
        known = ", ".join(sorted(caps.models)) or "none"
        raise manifest.error(("model",), f"unknown model {manifest.model!r} for provider {caps.provider} (known: {known})",
                             CapabilityError)
    run = dict(manifest.run or {})
    cap = int(max_jobs or run.get("max_jobs") or DEFAULT_MAX_JOBS)
    out_dir = (outputs_dir or outputs_dir_of(manifest)).resolve()
    sweeps = _sweeps(manifest)

    expansions: list[tuple[_Sweep, Expansion]] = []
    for sw in sweeps:
        if sw.matrix:
            def err(p: tuple[Any, ...], msg: str, _sw: _Sweep = sw) -> Exception:
                return manifest.error(_sw.prefix + ("matrix",) + tuple(p), msg, MatrixError)
            try:
                expansions.append((sw, expand(sw.matrix, error=err)))
            except ManifestError as exc:
                errors.add(exc)
            except ManifestErrors as exc:
                for e in exc.errors:
                    errors.add(e)
        else:
            expansions.append((sw, Expansion((Combination((), "single", ()),), ())))
    for sw, expansion in expansions:
        if not expansion.combinations:
            numbers = ", ".join(str(n) for n in sorted({i for _, i in expansion.excluded}))
            errors.add(manifest.error(
                sw.prefix + ("matrix", "exclude"),
                f"every combination of the matrix is excluded ({len(expansion.excluded)} removed by exclude "
                f"{numbers}), so there is nothing to run; remove or narrow an exclude entry, or add an include "
                "(GitHub would run one job with an empty matrix; gridrun plans none and stops)", MatrixError))
    errors.raise_if_any()

    count = sum(len(e.combinations) * sw.repeat for sw, e in expansions)
    errors.one_job = count == 1
    if count > cap:
        explicit = manifest.data.get("run") or {}
        where = ("run", "max_jobs") if "max_jobs" in explicit else ("matrix",) if manifest.matrix else ("sweeps",)
        raise manifest.error(
            where,
            f"this manifest plans {count:,} jobs, above the cap of {cap:,}; check the matrix, "
            f"or raise the cap with --max-jobs or run.max_jobs",
        )

    ctx_job = _JobContext(manifest, caps, model, errors, digest, str(out_dir))
    excluded: list[tuple[str | None, Combination, int]] = []
    for sw, expansion in expansions:
        excluded.extend((sw.name, c, i) for c, i in expansion.excluded)
        compiled = _compile_sweep(manifest, sw, errors)
        if compiled is not None:
            ctx_job.sweep(sw, expansion, *compiled)
    errors.raise_if_any()
    jobs = ctx_job.jobs
    first_of: dict[str, str] = {}
    same = [(first_of[j.hash], j.key) for j in jobs if first_of.setdefault(j.hash, j.key) != j.key]
    if same:
        ctx_job.warnings[
            f"{len(same):,} {'job sends' if len(same) == 1 else 'jobs send'} exactly the same request as an earlier "
            f"job (e.g. {same[0][1]!r} and "
            f"{same[0][0]!r}): the values that tell them apart change no request parameter, so they share one "
            "render; use them in a template, or use repeat for distinct renders"] = None

    # Every combination made a job (else an error was raised above), so the axes can be read from them.
    axes: dict[str, set[Any]] = {}
    key_sets: dict[int, frozenset[str]] = {}
    for _, expansion in expansions:
        for combo in expansion.combinations:
            if id(combo.sources) not in key_sets:
                key_sets[id(combo.sources)] = frozenset(k for k, _ in combo.values)
            for k, v in combo.values:
                try:
                    axes.setdefault(k, set()).add(v)
                except TypeError:
                    axes[k].add(format_value(v))
    # A key that some jobs lack varies too (an include that adds it to a few combinations).
    partial = {k for k in axes if any(k not in keys for keys in key_sets.values())}
    budget = run.get("budget_usd")
    return Plan(
        manifest=manifest,
        provider=caps.provider,
        model=model.model,
        jobs=tuple(jobs),
        excluded=tuple(excluded),
        axes=tuple(axes),
        varying=tuple(k for k, vs in axes.items() if len(vs) > 1 or k in partial),
        warnings=tuple(ctx_job.warnings),
        total_micros=sum(j.cost_micros for j in jobs),
        outputs_dir=out_dir,
        state_dir=state_dir_of(manifest),
        budget_micros=None if budget is None else int(round(float(budget) * 1_000_000)),
        max_jobs=cap,
    )


def _getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function returning the values of `names` in a mapping, always as a tuple."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        get = operator.itemgetter(names[0])
        return lambda mapping: (get(mapping),)
    return operator.itemgetter(*names)


@dataclass(slots=True)
class _Shape:
    """What all combinations with one set of matrix keys (one `sources` tuple) share within a sweep."""

    keys: frozenset[str]                    # the matrix keys
    sources: dict[str, str]                 # matrix key -> "matrix", "include 2", ...
    overrides: tuple[tuple[int, str], ...]  # (index in values, request parameter) set by matrix values
    dyn: tuple[str, ...]                    # vars rendered per job, in dependency order
    keyed: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # the values that vary and decide the check
    free: tuple[str, ...]                   # free-text parameters that vary: checked to be strings, hashed per job
    maybe_not_str: tuple[str, ...]          # free-text parameters that may render to something else
    entries: dict[Any, _Entry] = field(default_factory=dict)


@dataclass(slots=True)
class _Entry:
    """One `ModelCaps.check` outcome, shared by every job whose parameters differ only in free text."""

    checked: Checked
    segments: tuple[str, ...]               # the canonical hash text around the free-text values
    hashed_free: tuple[str, ...]            # the free-text parameters in the order they appear in it
    images: bool                            # local images: hashed by content, per job
    duration: float | None                  # None when it is free text (and so differs per job)
    sources: Mapping[str, str]


class _JobContext:
    """Builds the jobs of each sweep in turn; caches what jobs share so that 100,000 jobs stay cheap."""

    def __init__(self, m: Manifest, caps: ProviderCaps, model: ModelCaps, errors: _Collector,
                 digest: Callable[[Path], str], out_prefix: str) -> None:
        self.m = m
        self.provider = caps.provider
        self.model = model
        self.errors = errors
        self.digest = digest
        self.out_prefix = out_prefix
        self.jobs: list[Job] = []
        self.warnings: dict[str, None] = {}
        self.seen_keys: set[str] = set()
        self.seen_outputs: dict[str, str] = {}
        self.digests: dict[str, str] = {}
        self.images: dict[tuple[str, str], tuple[str, Any]] = {}
        ruled = {str(k) for rule in model.rules for k in (*rule.get("when", {}), rule.get("param"), rule.get("requires"))}
        # Free text (prompts) is only checked to be a string, so it can stay out of the check cache's key.
        self.free_text = frozenset(n for n, s in model.params.items()
                                   if s.type == "string" and s.enum is None and n not in ruled)

    def sweep(self, sw: _Sweep, expansion: Expansion, cvars: dict[str, Compiled], order: list[str],
              cparams: dict[str, Compiled], coutput: Compiled) -> None:
        m, errors = self.m, self.errors
        one_per_shape = {id(c.sources): c for c in expansion.combinations}.values()
        matrix_names = {k for c in one_per_shape for k, _ in c.values} | {"key", "repeat", "sweep", "index"}
        dynamic = dependents(cvars, frozenset(matrix_names))
        static_ctx: dict[str, Any] = {}
        static_ok = True
        for name in order:
            if name in dynamic:
                continue
            try:
                static_ctx[name] = cvars[name].render(static_ctx)
            except TemplateProblem as exc:
                errors.add(m.error(sw.var_paths[name], exc.message, TemplateError))
                static_ok = False
        if not static_ok:
            return
        dyn_order = [n for n in order if n in dynamic]
        param_sources: dict[str, str] = {}
        for name, c in cparams.items():
            where = dotted(sw.param_paths[name])
            param_sources[name] = f"{where} (template)" if c.kind != "const" else where
        # The request before matrix values: constants in place, templates filled in per job (order kept).
        base_params = {name: (c.source if c.kind == "const" else None) for name, c in cparams.items()}
        templated = tuple((name, c.renderer) for name, c in cparams.items() if c.kind != "const")
        var_fns = {name: cvars[name].renderer for name in dyn_order}
        render_output = coutput.renderer
        sweep_name = sw.name
        sweep_text = sw.name or ""
        jobs, seen_keys = self.jobs, self.seen_keys
        out_prefix = self.out_prefix
        provider, model_name = self.provider, self.model.model
        sha256 = hashlib.sha256
        new_job = tuple.__new__
        encode = _encode_string

        shapes: dict[int, _Shape] = {}
        origins: dict[str, str] = {}
        # Matrix values are shared (key, value) tuples that live as long as `expansion`: their ids are stable.
        key_parts: dict[int, str] = {}

        for combo in expansion.combinations:
            values = combo.values
            shape = shapes.get(id(combo.sources))
            if shape is None:
                shape = shapes[id(combo.sources)] = self._shape(combo, cparams, dyn_order)
            entries, keyed_of, maybe_not_str = shape.entries, shape.keyed, shape.maybe_not_str
            try:
                body = ",".join([key_parts[id(p)] for p in values])
            except KeyError:
                for p in values:
                    key_parts[id(p)] = f"{p[0]}={format_value(p[1])}"
                    if not _encodable(key_parts[id(p)]):
                        errors.add(m.error(_matrix_path(sw, shape.sources.get(p[0], "matrix"), p[0]), _SURROGATE,
                                           MatrixError))
                body = ",".join([key_parts[id(p)] for p in values])
            base_key = (f"{sweep_name}/{body or 'job'}" if sweep_name else body) or "job"
            origin = origins.get(combo.origin)
            if origin is None:
                origin = origins[combo.origin] = f"sweep {sweep_name}: {combo.origin}" if sweep_name else combo.origin
            for r in range(sw.repeat):
                key = f"{base_key}#{r}" if r else base_key
                if key in seen_keys:
                    errors.add(m.error(sw.prefix + ("matrix",), f"two jobs have the same key {key!r}; "
                                       "make the matrix entries differ, or use repeat", MatrixError))
                    continue
                seen_keys.add(key)
                ctx = static_ctx.copy()
                ctx.update(values)
                ctx["key"] = key
                ctx["repeat"] = r
                ctx["sweep"] = sweep_text
                ctx["index"] = len(jobs)
                try:
                    for name in shape.dyn:
                        ctx[name] = var_fns[name](ctx)
                except TemplateProblem as exc:
                    errors.add(m.error(sw.var_paths[name], exc.message, TemplateError), key)
                    continue
                params = base_params.copy()
                failed: list[str] = []
                for name, render in templated:
                    try:
                        params[name] = render(ctx)
                    except TemplateProblem as exc:
                        errors.add(m.error(sw.param_paths[name], exc.message, TemplateError), key)
                        failed.append(name)
                for i, name in shape.overrides:
                    params[name] = values[i][1]

                if failed:
                    # Check the rest of the request and the output too, so that one pass reports more problems.
                    rest = {k: v for k, v in params.items() if k not in failed}
                    self._issues(sw, shape, self.model.check(rest), key, skip=failed)
                    self._output(sw, render_output, ctx, key, None)
                    continue
                for n in maybe_not_str:
                    if type(params[n]) is not str:
                        uncached = True
                        break
                else:
                    uncached = False
                if not uncached:
                    keyed = keyed_of(params)
                    ck: Any = (keyed, tuple(map(type, keyed)))
                    try:
                        entry = entries.get(ck)
                    except TypeError:
                        ck = (json.dumps(keyed, default=str), ck[1])
                        entry = entries.get(ck)
                    if entry is None:
                        entry = entries[ck] = self._entry(sw, shape, self.model.check(params), param_sources)
                    checked = entry.checked
                    if checked.issues:
                        self._issues(sw, shape, checked, key)
                        self._output(sw, render_output, ctx, key, None)
                        continue
                    resolved = checked.params.copy()
                    for n in shape.free:
                        resolved[n] = params[n]
                else:
                    entry = self._entry(sw, shape, self.model.check(params), param_sources)
                    checked = entry.checked
                    if checked.issues:
                        self._issues(sw, shape, checked, key)
                        self._output(sw, render_output, ctx, key, None)
                        continue
                    resolved = checked.params

                try:
                    if entry.images:
                        try:
                            resolved, hashed = self._local_images(sw, shape, resolved)
                        except ManifestError as exc:
                            errors.add(exc, key)
                            self._output(sw, render_output, ctx, key, None)
                            continue
                        digest_hex = job_hash(provider, model_name, hashed, r)
                    elif len(entry.hashed_free) == 1:
                        seg = entry.segments
                        text = f"{seg[0]}{encode(resolved[entry.hashed_free[0]])}{seg[1]}{r}}}"
                        digest_hex = sha256(text.encode()).hexdigest()
                    else:
                        seg = entry.segments
                        parts = [seg[0]]
                        for n, s in zip(entry.hashed_free, seg[1:], strict=True):
                            parts.append(encode(resolved[n]))
                            parts.append(s)
                        parts.append(f"{r}}}")
                        digest_hex = sha256("".join(parts).encode()).hexdigest()
                except UnicodeEncodeError:
                    name = next(n for n, v in resolved.items() if not _encodable(_canonical(v)))
                    errors.add(m.error(self._path(sw, shape, name), _SURROGATE, CapabilityError), key)
                    self._output(sw, render_output, ctx, key, None)
                    continue

                rel_path = self._output(sw, render_output, ctx, key, digest_hex)
                if rel_path is None:
                    continue
                duration = entry.duration
                if duration is None:
                    duration = float(resolved.get("duration", 0) or 0)
                jobs.append(new_job(Job, (key, sweep_name, r, values, resolved, digest_hex, checked.cost_micros,
                                          f"{out_prefix}/{rel_path}", checked.size, duration, checked.mode, origin,
                                          entry.sources)))

    def _shape(self, combo: Combination, cparams: Mapping[str, Compiled], dyn_order: Sequence[str]) -> _Shape:
        model_params = self.model.params
        keys = [k for k, _ in combo.values]
        overrides = tuple((i, k) for i, k in enumerate(keys) if k in model_params)
        names = list(cparams) + [k for _, k in overrides if k not in cparams]
        set_by_matrix = {k for _, k in overrides}
        # Constants are the same for every job of the shape: only matrix values and templates can differ.
        varies = [n for n in names if n in set_by_matrix or cparams[n].kind != "const"]
        free = tuple(n for n in varies if n in self.free_text)
        return _Shape(
            keys=frozenset(keys),
            sources=dict(combo.sources),
            overrides=overrides,
            dyn=tuple(n for n in dyn_order if n not in keys),
            keyed=_getter([n for n in varies if n not in self.free_text]),
            free=free,
            maybe_not_str=tuple(n for n in free if n in set_by_matrix or cparams[n].kind in ("expr", "list", "map")),
        )

    def _entry(self, sw: _Sweep, shape: _Shape, checked: Checked, param_sources: Mapping[str, str]) -> _Entry:
        for w in checked.warnings:
            self.warnings[f"{dotted(self._path(sw, shape, w.field))}: {w.message}"] = None
        params = checked.params
        free = [n for n in sorted(params) if n in shape.free]
        segments, current = [], f'{{"model":{_canonical(self.model.model)},"params":{{'
        for i, name in enumerate(sorted(params)):
            current += ("," if i else "") + _canonical(name) + ":"
            if name in free:
                segments.append(current)
                current = ""
            else:
                current += _canonical(params[name])
        segments.append(f'{current}}},"provider":{_canonical(self.provider)},"repeat":')
        entry = _Entry(
            checked=checked,
            segments=tuple(segments),
            hashed_free=tuple(free),
            images=any(p in params for p in IMAGE_PARAMS),
            duration=float(params.get("duration", 0) or 0) if "duration" not in shape.free else None,
            sources=self._sources(sw, shape, checked, param_sources),
        )
        return entry

    def _sources(self, sw: _Sweep, shape: _Shape, checked: Checked, param_sources: Mapping[str, str]) -> dict[str, str]:
        sources = dict(param_sources)
        for _, k in shape.overrides:
            src = shape.sources.get(k, "matrix")
            sources[k] = f"sweep {sw.name}: {src}" if sw.name else src
        for name in checked.params:
            if name not in sources:
                sources[name] = f"default ({self.model.provider} capability data)"
        return sources

    def _path(self, sw: _Sweep, shape: _Shape, name: str) -> tuple[Any, ...]:
        """Where a request parameter's value was set: its matrix entry, its params line, or params."""
        if name in shape.keys:
            return _matrix_path(sw, shape.sources.get(name, "matrix"), name)
        if name in sw.param_paths:
            return sw.param_paths[name]
        return sw.prefix + ("params",)

    def _issues(self, sw: _Sweep, shape: _Shape, checked: Checked, key: str, *, skip: Sequence[str] = ()) -> None:
        for issue in checked.issues:
            if issue.field not in skip:
                self.errors.add(self.m.error(self._path(sw, shape, issue.field), issue.message, CapabilityError), key)

    def _output(self, sw: _Sweep, render: Callable[[Mapping[str, Any]], Any], ctx: dict[str, Any], key: str,
                digest_hex: str | None) -> str | None:
        """The job's output path relative to the output folder, checked; None (and an error) when it is not usable.

        A job that cannot run (`digest_hex` None) is still checked, with a stand-in hash unique to its key.
        """
        ctx["hash"] = (digest_hex or hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest())[:12]
        try:
            rel = render(ctx)
        except TemplateProblem as exc:
            self.errors.add(self.m.error(sw.output_path, exc.message, TemplateError), key)
            return None
        if type(rel) is str and _SAFE_REL.fullmatch(rel):
            rel_path = rel
        else:
            safe = _output_path(self.m, sw, rel, self.errors, key)
            if safe is None:
                return None
            rel_path = safe
        seen = self.seen_outputs.get(rel_path)
        if seen is not None:
            self.errors.add(self.m.error(
                sw.output_path,
                f"jobs {seen!r} and {key!r} would both write {rel_path}; "
                "put the keys that vary into output (e.g. \"{{ key }}.mp4\")"), key)
            return None
        self.seen_outputs[rel_path] = key
        return rel_path if digest_hex is not None else None

    def _local_images(self, sw: _Sweep, shape: _Shape, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Local image paths made absolute (checked to exist) and, for the hash, replaced by their digests."""
        resolved = dict(params)
        hashed = dict(params)
        for name in IMAGE_PARAMS:
            if name not in params:
                continue
            value = params[name]
            items = value if isinstance(value, list) else [value]
            abs_items, hash_items = [], []
            for item in items:
                if _is_remote(item):
                    abs_items.append(item)
                    hash_items.append(item)
                    continue
                known = self.images.get((name, item))
                if known is None:
                    path = (self.m.base_dir / item).resolve()
                    if not path.is_file():
                        raise self.m.error(self._path(sw, shape, name),
                                           f"input image {item!r} not found (looked for {path})", CapabilityError)
                    sp = str(path)
                    if sp not in self.digests:
                        self.digests[sp] = self.digest(path)
                    known = self.images[(name, item)] = (sp, {"file": path.name, "sha256": self.digests[sp]})
                abs_items.append(known[0])
                hash_items.append(known[1])
            resolved[name] = abs_items if isinstance(value, list) else abs_items[0]
            hashed[name] = hash_items if isinstance(value, list) else hash_items[0]
        return resolved, hashed


def _compile_sweep(
    m: Manifest, sw: _Sweep, errors: _Collector
) -> tuple[dict[str, Compiled], list[str], dict[str, Compiled], Compiled] | None:
    ok = True
    cvars: dict[str, Compiled] = {}
    for name, value in sw.vars.items():
        try:
            cvars[name] = compile_value(value)
        except TemplateProblem as exc:
            errors.add(m.error(sw.var_paths[name], exc.message, TemplateError))
            ok = False
    cparams: dict[str, Compiled] = {}
    for name, value in sw.params.items():
        try:
            cparams[name] = compile_value(value)
        except TemplateProblem as exc:
            errors.add(m.error(sw.param_paths[name], exc.message, TemplateError))
            ok = False
    try:
        coutput = compile_value(sw.output)
    except TemplateProblem as exc:
        errors.add(m.error(sw.output_path, exc.message, TemplateError))
        return None
    if not ok:
        return None
    try:
        order = var_order(cvars)
    except TemplateProblem as exc:
        first = exc.message.split(": ", 1)[-1].split(" -> ")[0]
        errors.add(m.error(sw.var_paths.get(first, ("vars",)), exc.message, TemplateError))
        return None
    return cvars, order, cparams, coutput


_SURROGATE = ("holds a lone surrogate (a \\ud800-\\udfff escape), which is not text; write the character itself, "
              "or one \\U escape such as \\U0001F98A")


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_remote(value: str) -> bool:
    return value.startswith(("http://", "https://", "data:"))


def _output_path(m: Manifest, sw: _Sweep, rel: Any, errors: _Collector, key: str) -> str | None:
    """The output path relative to the output folder, made safe; None (and an error) when it is not."""
    text = str(rel).strip()
    if _SAFE_REL.fullmatch(text):
        return text
    if not text:
        errors.add(m.error(sw.output_path, "renders an empty path"), key)
        return None
    if text.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:[\\/]", text):
        errors.add(m.error(sw.output_path, "renders an absolute path; output is relative to the output folder"),
                   key, repr(text))
        return None
    norm = posixpath.normpath(text.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        errors.add(m.error(sw.output_path, "renders a path that leaves the output folder"), key, repr(text))
        return None
    parts = [_UNSAFE.sub("_", p) for p in norm.split("/") if p not in ("", ".")]
    if not parts:
        errors.add(m.error(sw.output_path, "renders a path that names no file"), key, repr(text))
        return None
    return "/".join(parts)


# --------------------------------------------------------------------------------------------------
# The plan against the state store.


@dataclass(frozen=True, slots=True)
class Stored:
    """What the state store knows of a job hash."""

    state: str
    done_run_id: int | None
    output_path: str | None
    output_ok: bool               # the file is there with the recorded SHA-256 size


@dataclass(frozen=True, slots=True)
class Diff:
    """Why each job of a plan will or won't be paid for."""

    reasons: Mapping[str, str]            # job key -> reason ("new", "cached: done in run 3", ...)
    new: int
    cached: int
    in_flight: int
    settled: int                          # failed/rejected/unknown/expired/cancelled: re-run only on request
    changed: tuple[str, ...]              # keys whose content (hash) changed since the previous run
    stale: tuple[str, ...]                # keys of the previous run that this plan no longer has


def diff(plan: Plan, stored: Mapping[str, Stored], previous: Mapping[str, str], *, force: bool = False) -> Diff:
    """Compare `plan` with stored jobs (by hash) and the previous run's key -> hash."""
    reasons: dict[str, str] = {}
    new = cached = in_flight = settled = 0
    changed: list[str] = []
    for job in plan.jobs:
        s = stored.get(job.hash)
        old = previous.get(job.key)
        if old is not None and old != job.hash:
            changed.append(job.key)
        if force:
            reasons[job.key] = "forced"
            new += 1
        elif s is None or s.state == "planned":
            reasons[job.key] = "changed since the last run" if old is not None and old != job.hash else "new"
            new += 1
        elif s.state == "done" and s.output_ok:
            reasons[job.key] = f"cached: done in run {s.done_run_id}" if s.done_run_id else "cached: done"
            cached += 1
        elif s.state == "done":
            reasons[job.key] = "done, but its file is missing or altered: download again"
            in_flight += 1
        elif s.state in ("submitting", "submitted", "running", "downloading"):
            reasons[job.key] = f"in flight ({s.state}): attach, pay nothing new"
            in_flight += 1
        else:
            reasons[job.key] = f"{s.state}: left alone (gridrun retry re-runs it)"
            settled += 1
    keys = {j.key for j in plan.jobs}
    stale = tuple(k for k in previous if k not in keys)
    return Diff(reasons, new, cached, in_flight, settled, tuple(changed), stale)


def relpath(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:
        return str(path)


def summarize_sources(jobs: Sequence[Job]) -> dict[str, list[str]]:
    """Parameter -> the distinct places its values came from across `jobs` (for --explain)."""
    out: dict[str, list[str]] = {}
    for job in jobs:
        for name, src in job.sources.items():
            lst = out.setdefault(name, [])
            if src not in lst:
                lst.append(src)
    return out
