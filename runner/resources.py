"""Where gridrun's files that are not Python are: `schemas/`, `reports/` and `manifests/` beside the package in a
checkout (and an editable install of it), inside the package (`runner/schemas`, `runner/reports`,
`runner/manifests` with the demo alone) once installed from a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder `name` ("schemas", "reports" or "manifests")."""
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name
