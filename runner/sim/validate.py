"""Checking requests as the real API does: create bodies through gridrun's own capability data, so the
simulator refuses the values the planner refuses, but passes unknown fields through as the provider does
(a slip of a known name included, which the planner refuses as it would bill the default); and query
arguments of the list routes.

The prompt: text (a number is not one), of at most `PROMPT_MAX` characters (the capability data's
`max_length`, as OpenAI's create schema says). The OpenAI-shaped route (`/openai/v1`) takes at least one;
the native route (`/v1`) takes an empty one, as the Lumenfall seed page's own example sends one; only the
planner refuses it there (it bills a render nobody means).

Images (`input_reference`, `last_frame_image`): an https URL, or a data URI of a whole image of a kind gridrun
sends, no larger than the parameter's `max_bytes` (providers.md: `{"image_url": https URL or data URI}`); a local
path, another scheme, a data URI of text or of bad base64 is refused as the real API refuses it. A file uploaded
in a multipart body is taken as it is.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Mapping

from runner import images
from runner.providers import capabilities
from runner.sim.errors import ApiError

PROVIDER = "sim"
PROMPT_MAX = 32000
"""The longest prompt of OpenAI's create schema, in characters."""


def normalise_references(value: Any) -> Any:
    """`input_reference` as the capability data types it: a string or a list of strings."""
    if isinstance(value, dict):
        if "image_url" in value:
            return value["image_url"]
        if "file_id" in value:
            return FileRef(f"file:{value['file_id']}")
        return value
    if isinstance(value, list):
        return [normalise_references(v) for v in value]
    return value


def check(body: Mapping[str, Any], *, openai: bool = False, caps: capabilities.ProviderCaps | None = None
          ) -> tuple[capabilities.ModelCaps, capabilities.Checked]:
    """The model and the checked parameters (defaults explicit, render size, cost) of a create body.
    `seconds` is an alias of `duration`; unknown fields pass through, a slip of a known name (`qualty`) included.
    `openai`: the body came by the OpenAI-shaped route, which takes a prompt of 1 to `PROMPT_MAX` characters.
    `caps`: the capability data simulated (a run's, merged with its manifest's capabilities files: their models and
    prices); gridrun's own when None.

    :raises ApiError: 400 INVALID_REQUEST naming the field as the caller spelled it, 404 MODEL_NOT_FOUND.
    """
    name = body.get("model")
    if name is None:
        raise ApiError(400, "INVALID_REQUEST", "model: is required", param="model")
    if not isinstance(name, str):
        raise ApiError(400, "INVALID_REQUEST", f"model: expected a string, got {name!r}", param="model")
    caps = caps if caps is not None else capabilities.load(PROVIDER)
    model = caps.model(name) if caps else None
    if caps is None or model is None:
        known = ", ".join(sorted(caps.models)) if caps else ""
        raise ApiError(404, "MODEL_NOT_FOUND", f"model: {name!r} does not exist (available: {known})", param="model")
    params = {k: v for k, v in body.items() if k not in ("model", "idempotency_key")}
    if "input_reference" in params:
        params["input_reference"] = normalise_references(params["input_reference"])
    checked = model.check(params, as_provider=True)  # a problem is named as spelled: `seconds`, or `duration`
    issues = list(checked.issues)
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str) and not any(i.field == "prompt" for i in issues):
        issues.append(capabilities.Issue("prompt", f"expected a string, got {_shown(prompt)}"))
    for name in ("input_reference", "last_frame_image"):
        spec = model.params.get(name)
        if spec is None or name not in params or any(i.field == name for i in issues):
            continue
        problem = _image_problem(params[name], spec.max_bytes)
        if problem is not None:
            issues.append(capabilities.Issue(name, problem))
    if openai and isinstance(prompt, str) and not any(i.field == "prompt" for i in issues):
        if not prompt:
            issues.append(capabilities.Issue("prompt", f"must not be empty (1 to {PROMPT_MAX} characters)"))
        elif len(prompt) > PROMPT_MAX:
            issues.append(capabilities.Issue("prompt", f"must be at most {PROMPT_MAX} characters, got {len(prompt)}"))
    if issues:
        message = "; ".join(f"{i.field}: {i.message}" for i in issues)
        raise ApiError(400, "INVALID_REQUEST", message, param=issues[0].field)
    return model, checked


def _image_problem(value: Any, max_bytes: int | None) -> str | None:
    """Why an image parameter's value (an item or a list of them, `normalise_references`d) is not one the API
    takes: each an https URL, a file uploaded (multipart) or named by its id, or a data URI of a whole image."""
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, str):
            continue  # typed by the capability data's check
        if isinstance(item, FileRef):
            continue
        if images.is_data_uri(item):
            problem = images.data_uri_problem(item, max_bytes)
            if problem is not None:
                return f"the data URI {_shown(item)} {problem}"
        elif item[:8].lower() != "https://":
            return f"expected an https URL or a data URI, got {_shown(item)}"
    return None


IMAGE_PARAMS = ("input_reference", "last_frame_image")


def kept(params: dict[str, Any]) -> dict[str, Any]:
    """`params` (checked) as a video keeps them and its world writes them down: each data URI of an image
    parameter replaced by its stand-in (`images.stand_in`: media type, SHA-256, size), as the images were
    checked already and the simulator answers nothing of their bytes. The body's `fingerprint` is taken before,
    of the whole images, so a reused key with another image is still told."""
    if not any(name in params for name in IMAGE_PARAMS):
        return params
    out = dict(params)
    for name in IMAGE_PARAMS:
        value = out.get(name)
        if isinstance(value, list):
            out[name] = [images.stand_in(v) if isinstance(v, str) and not isinstance(v, FileRef) else v for v in value]
        elif isinstance(value, str) and not isinstance(value, FileRef):
            out[name] = images.stand_in(value)
    return out


def _shown(value: Any) -> str:
    """`value` as a message shows it: a long one (a data URI of megabytes) cut to its first 60 characters."""
    text = repr(value)
    return text if len(text) <= 64 else f"{text[:60]}...'"


class FileRef(str):
    """A file the API holds, as the create's parameters name it: uploaded in a multipart body
    (`upload:NAME:SHA256`), or named by its id (`file:ID`); text, told from an image URL a body sends."""

    __slots__ = ()


def fingerprint(model: capabilities.ModelCaps, checked: capabilities.Checked) -> str:
    """What a create would render and bill, whatever its spelling: the model and the checked parameters."""
    canonical = json.dumps({"model": model.model, "params": checked.params}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def dry_run(body: Mapping[str, Any], *, openai: bool = False, caps: capabilities.ProviderCaps | None = None
            ) -> dict[str, Any]:
    """The price of a create body, without creating anything.

    :raises ApiError: as `check`.
    """
    model, checked = check(body, openai=openai, caps=caps)
    n = int(checked.params.get("n", 1))
    w, h = checked.size
    return {
        "estimated": True,
        "total_cost_micros": checked.cost_micros,
        "currency": model.prices.get("currency", "USD"),
        "components": [
            {
                "type": "video",
                "model": model.model,
                "quantity": n,
                "seconds": int(checked.params.get("duration", 5)),
                "size": f"{w}x{h}",
                "unit_cost_micros": checked.cost_micros // max(1, n),
                "cost_micros": checked.cost_micros,
            }
        ],
    }


def limit_arg(value: str | None, default: int = 20) -> int:
    """The `limit` query argument of a list route: 0 to 100.

    :raises ApiError: 400 naming `limit`.
    """
    if value is None:
        return default
    try:
        limit = int(value)
    except ValueError as exc:
        raise ApiError(400, "INVALID_REQUEST", f"limit: expected an integer, got {value!r}", param="limit") from exc
    if not 0 <= limit <= 100:
        raise ApiError(400, "INVALID_REQUEST", f"limit: must be between 0 and 100, got {limit}", param="limit")
    return limit


def time_arg(name: str, value: str | None) -> float | None:
    """A time query argument: unix seconds or ISO 8601.

    :raises ApiError: 400 naming the argument.
    """
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        message = f"{name}: expected unix seconds or ISO 8601, got {value!r}"
        raise ApiError(400, "INVALID_REQUEST", message, param=name) from exc
