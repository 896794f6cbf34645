"""Files in the output folder: atomic writes, verification against recorded digests, sidecars."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` all or nothing: a temporary file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified(path: Path, sha256: str | None) -> bool:
    """The file is there and has the recorded digest."""
    return bool(sha256) and path.is_file() and sha256_file(path) == sha256


def sidecar_path(video: Path) -> Path:
    return video.with_suffix(".json")


def read_sidecar(video: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(sidecar_path(video).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def sidecar_matches(video: Path, job_hash: str) -> str | None:
    """The digest of `video` when its sidecar names this job and that digest; else None."""
    doc = read_sidecar(video)
    if doc is None or doc.get("hash") != job_hash or not video.is_file():
        return None
    sha = doc.get("sha256")
    return sha if isinstance(sha, str) and sha256_file(video) == sha else None


def copy_output(src: Path, dest: Path) -> None:
    """Copy a finished video and its sidecar (a cached job whose output path differs)."""
    atomic_write(dest, src.read_bytes())
    side = sidecar_path(src)
    if side.is_file():
        atomic_write(sidecar_path(dest), side.read_bytes())
