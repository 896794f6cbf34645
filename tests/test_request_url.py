"""The URL of a request the direct aiohttp path sends: the one httpx's client would build, kept per client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runner.providers.transport import request_url


@pytest.mark.parametrize("params", [
    None, {"limit": 20, "order": "desc"}, {"limit": 20, "order": "asc", "after": "video_1"},
    {"x": True}, {"x": 1}, {"x": 1.0}, {"x": "1"}, {"x": None}, {"x": ["a", "b"]}, {"q": "a b&c=d/é"},
    {"x": 0.0}, {"x": -0.0}, {"x": (1,)}, {"x": (True,)}, {"x": ("a", 1.0)}, {"x": ("a", 1)},
], ids=repr)
def test_a_request_url_is_the_one_httpx_builds(params: dict[str, Any] | None) -> None:
    """Asked once and again (the second from what the client keeps), with values that are written alike by
    Python's equality (`True`, `1`, `1.0`) but apart by httpx, and a value that cannot be kept (a list)."""
    client = httpx.AsyncClient(base_url="http://127.0.0.1:9/v1")
    for others in ({"x": 1}, {"x": True}, {"x": 1.0}, {"x": 0.0}, {"x": (1,)}, {"x": ("a", 1)}):
        # what the client keeps already must not answer for these
        request_url(client, "videos", others)
    for _ in range(2):
        got = request_url(client, "videos", params)
        assert str(got) == str(client.build_request("GET", "videos", params=params).url)


def test_a_client_keeps_a_bounded_number_of_queries() -> None:
    """A cursor makes each page's query another: what a client keeps stays bounded, and stays right."""
    client = httpx.AsyncClient(base_url="http://127.0.0.1:9/v1")
    for i in range(400):
        params = {"limit": 100, "after": f"video_{i}"}
        assert str(request_url(client, "videos", params)) == str(client.build_request("GET", "videos", params=params).url)
    from runner.providers import transport

    assert len(transport._resolved[client][2]) <= transport._RESOLVED_MAX
