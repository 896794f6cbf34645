"""A cancel the provider refuses with its code (HTTP 409 "cannot be cancelled in its current state") is told as a
refusal: the renders go on and are billed, and `gridrun run` collects them; not as a failed request that `gridrun
cancel` again may get past, which a 5xx still is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main
from runner.options import RunOptions


def _refusing_deletes(monkeypatch: pytest.MonkeyPatch, status: int, body: dict[str, Any]) -> list[str]:
    """The provider `cancel` builds answers every DELETE `status` with `body`, the rest as the simulator does;
    returns the paths of the DELETEs it answered."""
    made = api._provider
    seen: list[str] = []

    def provider(p: Any) -> Any:
        prov = made(p)
        client = prov.client

        class Refusing(httpx.AsyncBaseTransport):
            def __init__(self) -> None:
                self.inner = httpx.ASGITransport(app=prov.app)

            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if request.method == "DELETE":
                    seen.append(request.url.path)
                    return httpx.Response(status, json=body, request=request)
                return await self.inner.handle_async_request(request)

        prov.client = lambda **kw: client(**kw, transport=Refusing())
        return prov

    monkeypatch.setattr(api, "_provider", provider)
    return seen


def _left_rendering(tmp_path: Path) -> Path:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), sim={"render_time": 60.0, "jitter": 0.0})
    api.run(m, options=RunOptions(timeout=0.3), report=False)
    assert sum(1 for j in api.status(m).jobs if j.state in ("submitted", "running")) == 2
    return m


def test_a_cancel_refused_409_with_a_code_is_said_as_a_refusal_not_to_be_asked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    m = _left_rendering(tmp_path)
    seen = _refusing_deletes(monkeypatch, 409, {"error": {
        "code": "CONFLICT", "message": "video cannot be cancelled in its current state"}})
    code = main(["cancel", str(m)])
    said = " ".join(capsys.readouterr().err.split())
    assert code == 1 and len(seen) == 2, said
    assert ("error: the provider refused to cancel 2 jobs (style=anime,seed=1, style=clay,seed=1; HTTP 409, CONFLICT"
            ) in said and "video cannot be cancelled in its current state" in said, said
    assert f"they render on and will be billed: `gridrun run {m}` collects them when they are rendered" in said, said
    assert "again tries" not in said and "a request to the provider having failed" not in said, said
    assert sum(1 for j in api.status(m).jobs if j.state in ("submitted", "running")) == 2
    result = api.cancel(m)
    assert len(result.refused) == 2 and not result.errors and not result.not_taken, result


def test_a_cancel_answered_500_is_still_a_failed_request_to_try_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    m = _left_rendering(tmp_path)
    _refusing_deletes(monkeypatch, 500, {"error": {"code": "INTERNAL_ERROR", "message": "try later"}})
    code = main(["cancel", str(m)])
    said = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "2 jobs not cancelled, a request to the provider having failed" in said, said
    assert f"`gridrun cancel {m}` again tries them again" in said and "refused to cancel" not in said, said
    result = api.cancel(m)
    assert len(result.errors) == 2 and all(f"tried {api.CANCEL_TRIES} times" in why for why in result.errors.values())


def _rendering_with_deletes(tmp_path: Path, *rules: dict[str, Any]) -> Path:
    """One job left rendering by a run against the in-process simulator, whose DELETEs meet `rules`."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 60.0, "jitter": 0.0, "script": [{"route": "delete", **rule} for rule in rules]})
    api.run(m, options=RunOptions(timeout=0.3), report=False)
    assert [j.state for j in api.status(m).jobs] == ["running"]
    return m


@pytest.mark.parametrize("rule", [
    {"fault": "server_error", "status": 503, "nth": [1, 2]},
    {"fault": "server_error", "status": 502, "nth": [1], "retry_after": 1},
    {"fault": "reset_before", "nth": [1]},
], ids=["503-twice", "502-retry-after", "connection-reset"])
def test_a_cancel_answered_5xx_or_cut_off_is_tried_again_and_cancels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rule: dict[str, Any],
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    m = _rendering_with_deletes(tmp_path, rule)
    code = main(["cancel", str(m)])
    said = " ".join(capsys.readouterr().err.split())
    assert code == 0, said
    assert "style=anime,seed=1's video" in said and "trying each again, up to 4 tries within 60 s" in said, said
    assert "not cancelled" not in said, said
    assert [j.state for j in api.status(m).jobs] == ["cancelled"]


def test_a_cancel_asked_to_wait_past_the_tries_time_stops_and_says_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = _rendering_with_deletes(tmp_path, {"fault": "server_error", "status": 503, "p": 1.0, "retry_after": 3600})
    told: list[str] = []
    result = api.cancel(m, on_wait=told.append)
    why = result.errors["style=anime,seed=1"]
    assert "HTTP 503" in why and "(not tried again: the provider asks to wait 3,600 s, longer than cancel tries again for (60 s))" in why, why
    assert "tried 2" not in why and not told, (why, told)
    assert [j.state for j in api.status(m).jobs] == ["running"]


def test_cancels_answered_503_wait_for_their_next_try_without_holding_up_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As many cancels as `cancel` sends at once answered 503 with a Retry-After: while each waits for its next try,
    the cancels of the other jobs are sent (a slot of the CANCEL_AT_ONCE is not held through the wait), and every job
    ends cancelled."""
    n = 2 * api.CANCEL_AT_ONCE
    busy = list(range(1, api.CANCEL_AT_ONCE + 1))  # the first DELETEs, one per slot
    m = write_manifest(tmp_path, n_seeds=n, styles=("anime",), run={"concurrency": n}, sim={
        "render_time": 120.0, "jitter": 0.0, "concurrency": n,
        "script": [{"route": "delete", "fault": "server_error", "status": 503, "nth": busy, "retry_after": 2}]})
    api.run(m, options=RunOptions(timeout=0.3), report=False)
    assert sum(1 for j in api.status(m).jobs if j.state in ("submitted", "running")) == n
    made = api._provider
    deletes: list[str] = []

    def provider(p: Any) -> Any:
        prov = made(p)
        client = prov.client

        class Recording(httpx.AsyncBaseTransport):
            def __init__(self) -> None:
                self.inner = httpx.ASGITransport(app=prov.app)

            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if request.method == "DELETE":
                    deletes.append(request.url.path)
                return await self.inner.handle_async_request(request)

        prov.client = lambda **kw: client(**kw, transport=Recording())
        return prov

    monkeypatch.setattr(api, "_provider", provider)
    result = api.cancel(m)
    assert len(result.cancelled) == n and not result.errors, result
    assert len(deletes) == n + len(busy), deletes  # the busy ones asked twice
    assert len(set(deletes[:n])) == n, deletes  # every job's cancel sent before any is tried again


def _status_failing(monkeypatch: pytest.MonkeyPatch, times: int) -> list[tuple[str, str]]:
    """The provider `cancel` builds answers the first `times` GETs of each path 503, the rest as the simulator does;
    returns the method and path of every request it was sent, in order."""
    made = api._provider
    sent: list[tuple[str, str]] = []
    seen: dict[str, int] = {}

    def provider(p: Any) -> Any:
        prov = made(p)
        client = prov.client

        class Failing(httpx.AsyncBaseTransport):
            def __init__(self) -> None:
                self.inner = httpx.ASGITransport(app=prov.app)

            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                sent.append((request.method, request.url.path))
                if request.method == "GET":
                    seen[request.url.path] = seen.get(request.url.path, 0) + 1
                    if seen[request.url.path] <= times:
                        return httpx.Response(503, json={"error": {"code": "SERVICE_UNAVAILABLE", "message": "busy"}},
                                              headers={"Retry-After": "0"}, request=request)
                return await self.inner.handle_async_request(request)

        prov.client = lambda **kw: client(**kw, transport=Failing())
        return prov

    monkeypatch.setattr(api, "_provider", provider)
    return sent


def test_a_status_check_before_a_cancel_answered_503_is_asked_again_and_the_job_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The status of each video, read before its cancel (once to sort the queued from the rendering, once right
    before the request), answered 503 the first three times: asked again as the cancel request would be, and both
    jobs cancelled, not left rendering (and billed) with an error."""
    m = _left_rendering(tmp_path)
    sent = _status_failing(monkeypatch, 3)
    told: list[str] = []
    result = api.cancel(m, on_wait=told.append)
    assert sorted(result.cancelled) == ["style=anime,seed=1", "style=clay,seed=1"] and not result.errors, result
    assert sum(1 for method, _ in sent if method == "DELETE") == 2, sent
    assert len(told) == 1 and "could not be read" in told[0] and "up to 4 tries within 60 s" in told[0], told
    assert [j.state for j in api.status(m).jobs] == ["cancelled", "cancelled"]


def test_a_status_check_failing_through_its_tries_fails_that_jobs_cancel_with_what_was_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = _left_rendering(tmp_path)
    sent = _status_failing(monkeypatch, 1000)
    result = api.cancel(m)
    assert len(result.errors) == 2 and not result.cancelled, result
    assert all("HTTP 503" in why and f"tried {api.CANCEL_TRIES} times" in why for why in result.errors.values()), result
    assert not any(method == "DELETE" for method, _ in sent), sent
    # one look to sort the queued from the rendering (every cancel waits for that pass: not tried again there),
    # then the tries of the check before the cancel
    gets: dict[str, int] = {}
    for method, path in sent:
        if method == "GET":
            gets[path] = gets.get(path, 0) + 1
    assert len(gets) == 2 and set(gets.values()) == {1 + api.CANCEL_TRIES}, gets
    assert sum(1 for j in api.status(m).jobs if j.state in ("submitted", "running")) == 2


def test_the_queued_jobs_whose_first_status_check_is_answered_503_are_still_cancelled_before_the_rendering_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The simulator renders two at once, charges a render cancelled while rendering, not one cancelled while queued.
    The first status check of every job (the one sorting the queued from the rendering) answered 503: asked again,
    the two queued jobs are cancelled first, and only the two rendering ones are billed."""
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), run={"concurrency": 4},
                       sim={"render_time": 60, "jitter": 0.0, "concurrency": 2, "cancel_charge": 1.0})
    api.run(m, options=RunOptions(timeout=0.3), report=False)
    jobs = api.status(m).jobs
    assert sum(1 for j in jobs if j.state in ("submitted", "running")) == 4
    price = jobs[0].cost_estimate_micros
    sent = _status_failing(monkeypatch, 1)
    result = api.cancel(m)
    assert len(result.cancelled) == 4 and not result.errors, result
    assert sum(c for c, _ in result.charged.values()) == 2 * price, (result, sent)
