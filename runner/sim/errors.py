"""The simulated API's error answers."""

from __future__ import annotations

from typing import Any, Mapping


class ApiError(Exception):
    """An error answer of the API: HTTP status, Lumenfall error code, and a message naming the field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
