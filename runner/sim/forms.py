"""Request bodies of a create: JSON, or multipart/form-data with uploaded `input_reference` files."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
from typing import Any

from runner.sim.errors import ApiError
from runner.sim.validate import FileRef

_REFERENCE = re.compile(r"^(input_reference)(\[\d*\])?$")


def parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    """The create body as a mapping. Uploaded files become `upload:<name>:<sha256>` strings.

    :raises ApiError: 400 INVALID_REQUEST when the body is not a JSON object or a readable form.
    """
    if content_type.lower().startswith("multipart/form-data"):
        return _form(content_type, raw)
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise ApiError(400, "INVALID_REQUEST", f"body: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID_REQUEST", "body: expected a JSON object")
    return data


def _form(content_type: str, raw: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise ApiError(400, "INVALID_REQUEST", "body: not a readable multipart/form-data body")
    out: dict[str, Any] = {}
    references: list[tuple[int, str]] = []
    for i, part in enumerate(message.iter_parts()):
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ApiError(400, "INVALID_REQUEST", "body: a form part has no name")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        ref = _REFERENCE.match(name)
        if filename is not None:
            value: Any = FileRef(f"upload:{filename}:{hashlib.sha256(data).hexdigest()}")
        elif name == "prompt":  # text, whatever it reads as ("true", "[1]")
            value = data.decode("utf-8", errors="replace")
        else:
            value = _field(data.decode("utf-8", errors="replace"))
        if ref:
            index = int(ref.group(2)[1:-1]) if ref.group(2) and len(ref.group(2)) > 2 else 1_000_000 + i
            items = value if isinstance(value, list) else [value]
            references.extend((index, v) for v in items)
        else:
            out[name] = value
    if references:
        out["input_reference"] = [v for _, v in sorted(references, key=lambda r: r[0])]
    return out


def _field(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except ValueError:
            return text
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    return text
