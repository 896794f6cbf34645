"""Answers to a create that say the account or the setup is wrong, not the request: the run stops at the first,
names the URL and what to check, and leaves every job planned (nothing paid)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from execkit import sim_provider, stats, write_manifest

from runner import api, executor
from runner.cli import main
from runner.errors import RejectedError, ServerError
from runner.options import RunOptions
from runner.providers import get_provider

Handler = Callable[[httpx.Request], httpx.Response]
pytestmark = pytest.mark.usefixtures("key")


def fake_lumenfall(handler: Handler, base_url: str = "http://127.0.0.1:9/v1") -> Any:
    """A Lumenfall provider whose every request `handler` answers (no network)."""
    provider = get_provider("lumenfall", base_url=base_url)
    made = provider.client
    provider.client = lambda **kw: made(**kw, transport=httpx.MockTransport(handler))  # type: ignore[method-assign]
    return provider


def manifest(tmp_path: Path, **kw: Any) -> Path:
    return write_manifest(tmp_path, n_seeds=3, styles=("anime",), provider="lumenfall",
                          base_url=kw.pop("base_url", "http://127.0.0.1:9/v1"), sim={},
                          run={"concurrency": 1, **kw.pop("run", {})}, **kw)


def creates(seen: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in seen if r.method == "POST" and r.url.path.endswith("/videos")]


def answering(seen: list[httpx.Request], create: httpx.Response) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return create
        return httpx.Response(404, json={"error": {"message": "no such route", "code": "NOT_FOUND"}})
    return handler


def test_a_create_forbidden_to_the_key_stops_the_run_and_says_what_to_check(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    forbidden = httpx.Response(403, json={"error": {"message": "This API key does not have access to video generation",
                                                    "type": "permission_error", "code": "FORBIDDEN"}})
    m = manifest(tmp_path)
    result = api.run(m, provider=fake_lumenfall(answering(seen, forbidden)), options=RunOptions(), report=False)
    assert result.exit_code == 1 and result.status == "refused" and result.refused == "KEY_FORBIDDEN"
    assert len(creates(seen)) == 1  # not one refused create per job
    snap = api.status(m)
    assert {j.state for j in snap.jobs} == {"planned"}
    error = next(e for e in result.stats.last_errors if "403" in e)
    assert "http://127.0.0.1:9/v1" in error and "LUMENFALL_API_KEY" in error


def test_a_base_url_without_the_create_route_stops_the_run_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The easiest slip: Lumenfall's host without /v1. The simulator, served, answers 404 for the route."""
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server

    config = SimConfig.from_dict({"render_time": 0.2, "jitter": 0.0})
    with running_server(config) as url:
        root = url.rsplit("/v1", 1)[0]
        m = manifest(tmp_path, base_url=root)
        code = main(["run", str(m), "--no-report"])
        sim = httpx.get(root + "/_sim/stats").json()
    err = capsys.readouterr().err
    assert code == 1 and sim["creates"] == 0
    assert {j.state for j in api.status(m).jobs} == {"planned"}
    assert f"no create endpoint under {root}" in err and "LUMENFALL_BASE_URL" in err
    assert "base URL is wrong" in err and "`gridrun retry`" not in err


def test_a_409_to_the_first_send_of_a_key_with_nothing_in_the_log_leaves_the_job_planned_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No send of the key went unanswered, so none can have made a video: once the request log, which answers,
    has none for the key (read after it has settled), the job is planned again (nothing paid, nothing
    reserved), not `unknown`."""
    monkeypatch.setattr(executor, "LOG_SETTLE", 0.1)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(409, json={"error": {"message": "conflict", "code": "CONFLICT"}})
        if request.url.path.endswith("/requests"):
            return httpx.Response(200, json={"object": "list", "data": [], "has_more": False})
        return httpx.Response(404, json={"error": {"message": "no such route", "code": "NOT_FOUND"}})

    m = manifest(tmp_path, run={"retries": 0})
    result = api.run(m, provider=fake_lumenfall(handler), options=RunOptions(request_timeout=0.1), report=False)
    jobs = api.status(m).jobs
    assert {j.state for j in jobs} == {"planned"}, [(j.state, j.error) for j in jobs]
    assert result.stats.reserved_micros == 0
    assert all("refused the key with HTTP 409" in (j.error or "") and "nothing paid" in (j.error or "") for j in jobs)
    assert not any("no answer" in e for e in result.stats.last_errors)


def test_a_redirected_create_stops_the_run_and_names_where_it_points(tmp_path: Path) -> None:
    """What a base URL with http:// for https:// gets: a redirect is not a provider failure to try 6 times."""
    seen: list[httpx.Request] = []
    moved = httpx.Response(301, headers={"location": "https://127.0.0.1:9/v1/videos"})
    m = manifest(tmp_path)
    result = api.run(m, provider=fake_lumenfall(answering(seen, moved)), options=RunOptions(), report=False)
    assert result.exit_code == 1 and result.refused == "REDIRECTED"
    assert len(creates(seen)) == 1
    assert {j.state for j in api.status(m).jobs} == {"planned"}
    error = next(e for e in result.stats.last_errors if "redirects" in e)
    assert "http://127.0.0.1:9/v1/videos redirects to https://127.0.0.1:9/v1/videos (HTTP 301)" in error
    assert "LUMENFALL_BASE_URL" in error


@pytest.mark.parametrize("location", ["http://localhost:18703/login", "/login?next=/v1/videos", None])
def test_a_create_redirected_away_from_the_api_says_not_to_point_the_base_url_there(
    tmp_path: Path, location: str | None
) -> None:
    """A login portal's page (another host, another path) is not where the API is: following the advice to set the
    base URL there would send it the key."""
    from runner.cli import _account_refusal

    seen: list[httpx.Request] = []
    moved = httpx.Response(302, headers={"location": location} if location else {})
    m = manifest(tmp_path)
    result = api.run(m, provider=fake_lumenfall(answering(seen, moved)), options=RunOptions(), report=False)
    assert result.exit_code == 1 and result.refused == "REDIRECTED_AWAY"
    assert len(creates(seen)) == 1
    assert {j.state for j in api.status(m).jobs} == {"planned"}
    error = next(e for e in result.stats.last_errors if "redirects" in e)
    assert "something between gridrun and the provider (a proxy, a login portal) redirected the request; do not " \
           "set the base URL there" in error
    assert "to where it points" not in error
    end = _account_refusal(result.refused, "m")
    assert "do not set the base URL to where it redirects" in end and "set the provider's base URL to" not in end
    # the proxy variable named is the one for the base URL's scheme
    assert "set HTTPS_PROXY to the proxy" in _account_refusal(result.refused, "m", "https://gw.example/v1")
    assert "set HTTP_PROXY to the proxy" in _account_refusal(result.refused, "m", "http://gw.example/v1")


@pytest.mark.parametrize(("asked", "target", "keeps"), [
    ("http://h/v1/videos", "https://h/v1/videos", True),
    ("https://a/v1/videos/x", "https://b:8443/v1/videos/x", True),
    ("https://h/v1/videos", "https://h/openai/v1/videos", True),
    ("https://h/v1/videos", "https://h/v1/videos/", False),
    ("https://h/v1/videos", "https://portal/login", False),
    ("https://h/v1/videos", "https://h/", False),
])
def test_which_redirects_keep_the_apis_path(asked: str, target: str, keeps: bool) -> None:
    from runner.providers.transport import keeps_api_path

    assert keeps_api_path(httpx.URL(asked), httpx.URL(target)) is keeps


def refusing_clay(provider: Any, status: int, error: dict[str, Any]) -> list[str]:
    """`provider` (the in-process simulator) with every create of a clay prompt answered `status` and the JSON
    `error`, as a gateway's upstream refuses one request; the prompts refused, in order."""
    made = provider.client
    refused: list[str] = []

    class Refusing(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=provider.app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and request.url.path.endswith("/videos"):
                prompt = json.loads(request.content).get("prompt", "")
                if "clay" in prompt:
                    refused.append(prompt)
                    return httpx.Response(status, json={"error": error})
            return await self.inner.handle_async_request(request)

    provider.client = lambda **kw: made(**kw, transport=Refusing())  # type: ignore[method-assign]
    return refused


@pytest.mark.parametrize("status", [403, 404])
def test_a_coded_refusal_of_one_request_leaves_that_job_rejected_and_the_run_goes_on(
    tmp_path: Path, status: int
) -> None:
    """Lumenfall's UPSTREAM_ERROR has a status that varies: a 403 or 404 for one prompt is that job's refusal,
    not the key's or the base URL's."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("clay", "anime", "comic"), run={"concurrency": 1})
    provider = sim_provider(m)
    refused = refusing_clay(provider, status, {"message": "upstream refused this request", "type": "upstream_error",
                                               "code": "UPSTREAM_ERROR"})
    result = api.run(m, provider=provider, options=RunOptions(), report=False)
    states = {j.key: j.state for j in api.status(m).jobs}
    assert result.refused is None and result.status != "refused"
    assert sorted(k for k, s in states.items() if s == "rejected") == ["style=clay,seed=1", "style=clay,seed=2"]
    assert sorted(k for k, s in states.items() if s == "done") == [
        "style=anime,seed=1", "style=anime,seed=2", "style=comic,seed=1", "style=comic,seed=2"]
    assert len(refused) == 2 and stats(provider)["creates"] == 4


def test_a_create_forbidden_by_the_simulator_names_no_key_setting(tmp_path: Path) -> None:
    """The simulator takes no key: its refusal names no variable that does not exist."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("clay",), run={"concurrency": 1})
    provider = sim_provider(m)
    refusing_clay(provider, 403, {"message": "forbidden", "type": "permission_error", "code": "FORBIDDEN"})
    result = api.run(m, provider=provider, options=RunOptions(), report=False)
    assert result.refused == "KEY_FORBIDDEN"
    error = next(e for e in result.stats.last_errors if "403" in e)
    assert "forbidden to this key" in error and "SIM_API_KEY" not in error and "check" not in error


def test_an_html_404_from_a_wrong_base_url_stops_the_run_and_names_the_url(tmp_path: Path) -> None:
    """A web server's own 404 page, not the API's answer: every job would meet it."""
    seen: list[httpx.Request] = []
    page = httpx.Response(404, headers={"content-type": "text/html"},
                          text="<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1>"
                               "</center><hr><center>nginx</center></body></html>")
    m = manifest(tmp_path, base_url="http://127.0.0.1:9/api")
    result = api.run(m, provider=fake_lumenfall(answering(seen, page), base_url="http://127.0.0.1:9/api"),
                     options=RunOptions(), report=False)
    assert result.exit_code == 1 and result.refused == "ENDPOINT_NOT_FOUND"
    assert len(creates(seen)) == 1
    assert {j.state for j in api.status(m).jobs} == {"planned"}
    error = next(e for e in result.stats.last_errors if "404" in e)
    assert "no create endpoint under http://127.0.0.1:9/api" in error and "LUMENFALL_BASE_URL" in error
    assert "an HTML page" in error


def test_a_served_simulator_at_a_wrong_base_url_is_named_once_with_its_real_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`provider: sim` reads no SIM_BASE_URL: the advice names the manifest's `base_url:`; the request is said once."""
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server

    config = SimConfig.from_dict({"render_time": 0.2, "jitter": 0.0})
    with running_server(config) as url:
        wrong = url.rsplit("/v1", 1)[0] + "/wrong"
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), base_url=wrong, run={"concurrency": 1})
        code = main(["run", str(m), "--no-report"])
    err = capsys.readouterr().err
    assert code == 1 and {j.state for j in api.status(m).jobs} == {"planned"}
    assert f"no create endpoint under {wrong}" in err and "`base_url:`" in err and "gridrun sim serve" in err
    assert "SIM_BASE_URL" not in err and "SIM_API_KEY" not in err
    assert "POST /videos: no such route" in err and "/wrong/videos" not in err


def test_a_409_is_not_planned_again_while_a_slow_log_may_yet_show_the_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first send answered 502 that the provider took all the same, then 409s (it knows the key), and a request
    log slower to show the video than the sends are to repeat: its miss is believed only once it has settled (the
    request timeout and LOG_SETTLE after the last send), as a later run's reconcile would; planned before that,
    the job would be sent with a new key and paid twice."""
    monkeypatch.setattr(executor, "LOG_SETTLE", 2.0)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1, "retries": 0})
    provider = sim_provider(m)
    submit, find = provider.submit, provider.find_by_key
    first: list[float] = []

    async def taken_then_conflict(client: httpx.AsyncClient, body: dict[str, Any]) -> Any:
        if not first:
            first.append(time.monotonic())
            await submit(client, body)  # made, and paid for
            raise ServerError("POST /videos: bad gateway", status=502)
        raise RejectedError("POST /videos: the key is in use", status=409, code="CONFLICT")

    async def slow_log(client: httpx.AsyncClient, key: str, **kw: Any) -> Any:
        if time.monotonic() < first[0] + 2.0:  # not logged yet
            return None
        return await find(client, key, **kw)

    provider.submit, provider.find_by_key = taken_then_conflict, slow_log
    result = api.run(m, provider=provider, options=RunOptions(request_timeout=0.5), report=False)
    jobs = api.status(m).jobs
    assert [j.state for j in jobs] == ["done"], [(j.state, j.error) for j in jobs]
    assert stats(provider)["creates"] == 1 and result.stats.counts.get("planned", 0) == 0


def test_a_served_simulator_that_requires_a_key_takes_sim_api_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gridrun sim serve --api-key K` at a `provider: sim` manifest's `base_url:`: without SIM_API_KEY the run stops
    at the first 401, the message naming SIM_API_KEY and the serve flag; with it set to K the run goes through."""
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server

    monkeypatch.delenv("SIM_API_KEY", raising=False)
    config = SimConfig.from_dict({"render_time": 0.1, "jitter": 0.0, "api_key": "goodkey"})
    with running_server(config) as url:
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), base_url=url,
                           run={"concurrency": 1, "poll_interval": 0.05})
        assert main(["run", str(m), "--no-report"]) == 1
        err = capsys.readouterr().err
        assert "HTTP 401" in err and "SIM_API_KEY, the key `gridrun sim serve --api-key` was given" in err, err
        assert {j.state for j in api.status(m).jobs} == {"planned"}
        monkeypatch.setenv("SIM_API_KEY", "goodkey")
        assert main(["run", str(m), "--no-report"]) == 0, capsys.readouterr().err
    assert {j.state for j in api.status(m).jobs} == {"done"}


def test_a_run_at_a_served_simulator_polls_on_its_render_time_not_the_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`provider: lumenfall` at `gridrun sim serve` (its answers carry the simulator's header): the first poll is due
    on the simulator's render time, as its `/_sim/config` says, not on Lumenfall's minute."""
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server

    import threading

    config = SimConfig.from_dict({"render_time": 3.0, "jitter": 0.0})  # a check under a second is not shown
    checks: list[float] = []
    seen = threading.Event()

    def progress(stats: Any) -> None:  # the first check scheduled is all this asks: the run is let go then
        if stats.next_check is not None:
            checks.append(stats.next_check)
            seen.set()

    with running_server(config) as url:
        monkeypatch.setenv("LUMENFALL_BASE_URL", url)
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="lumenfall", sim={},
                           run={"concurrency": 2})
        api.run(m, options=RunOptions(), report=False, on_progress=progress, detach=seen)
    assert checks and checks[0] < 5, checks


def test_sim_serve_says_how_to_point_a_run_at_it() -> None:
    from runner.sim.serve import pointing_at

    said = pointing_at("http://127.0.0.1:8000/v1", keyed=False)
    assert "LUMENFALL_BASE_URL=http://127.0.0.1:8000/v1" in said and "any LUMENFALL_API_KEY" in said
    assert "`provider: sim` with `base_url: http://127.0.0.1:8000/v1`" in said
    keyed = pointing_at("http://127.0.0.1:8000/v1", keyed=True)
    assert "LUMENFALL_API_KEY set to the --api-key" in keyed and "SIM_API_KEY set to the --api-key" in keyed
    # served on every address: the loopback one, which `provider: sim` takes
    for every, here in (("http://0.0.0.0:8000/v1", "http://127.0.0.1:8000/v1"), ("http://[::]:8000/v1",
                                                                                "http://[::1]:8000/v1")):
        said = pointing_at(every, keyed=False)
        assert f"`base_url: {here}`" in said and every not in said, said


@pytest.mark.parametrize("create", [
    httpx.Response(405, json={"error": {"message": "POST is not allowed on /v1/videos/videos",
                                        "code": "METHOD_NOT_ALLOWED"}}),
    httpx.Response(405, headers={"content-type": "text/plain"}, text="Method Not Allowed"),
    httpx.Response(501, headers={"content-type": "text/plain"}, text="Not Implemented"),
], ids=["405-coded", "405-plain", "501-plain"])
def test_a_create_answered_method_not_allowed_stops_the_run_as_a_wrong_base_url(
    tmp_path: Path, create: httpx.Response
) -> None:
    """A base URL past the API's root reaches a path the server has with no create: every job would meet it, so the
    first stops the run, nothing rejected (which `retry` would send again), the jobs left planned."""
    seen: list[httpx.Request] = []
    m = manifest(tmp_path)
    result = api.run(m, provider=fake_lumenfall(answering(seen, create)), options=RunOptions(), report=False)
    assert result.exit_code == 1 and result.status == "refused" and result.refused == "ENDPOINT_NOT_FOUND"
    assert len(creates(seen)) == 1
    assert {j.state for j in api.status(m).jobs} == {"planned"}
    error = next(e for e in result.stats.last_errors if str(create.status_code) in e)
    assert "no create endpoint under http://127.0.0.1:9/v1" in error and "LUMENFALL_BASE_URL" in error


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1/videos", "http://127.0.0.1:9/v1/videos/", "https://api.lumenfall.ai/v1/Videos"])
def test_a_base_url_ending_in_videos_is_refused_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    m = manifest(tmp_path, base_url=url)
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = capsys.readouterr().err
        assert "drop the trailing /videos" in err and f"{m}:" in err and "base_url" in err, err
    m = manifest(tmp_path)
    monkeypatch.setenv("LUMENFALL_BASE_URL", url)
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = capsys.readouterr().err
        assert "drop the trailing /videos" in err and "LUMENFALL_BASE_URL" in err, err
    assert not (tmp_path / ".gridrun" / "state.db").exists()


# The account's balance, quota or credit spent, answered with another status than 402: each code as a provider
# writes it (OpenAI's 429 `insufficient_quota`, a gateway's 403 `QUOTA_EXCEEDED`, a 400 `insufficient_credits`).
ACCOUNT_REFUSALS = [
    (429, "insufficient_quota", "You exceeded your current quota, please check your plan and billing details."),
    (429, "INSUFFICIENT_BALANCE", "Insufficient balance"),
    (429, "billing_hard_limit_reached", "Billing hard limit has been reached"),
    (403, "QUOTA_EXCEEDED", "Monthly spend limit reached"),
    (400, "insufficient_credits", "Not enough credits"),
]


@pytest.mark.parametrize(("status", "code", "message"), ACCOUNT_REFUSALS, ids=[c[1] for c in ACCOUNT_REFUSALS])
def test_a_quota_or_billing_code_is_the_account_refused_whatever_the_status(status: int, code: str,
                                                                            message: str) -> None:
    from runner.providers.transport import status_error

    response = httpx.Response(status, json={"error": {"code": code, "type": code, "message": message}},
                              request=httpx.Request("POST", "http://127.0.0.1:9/v1/videos"))
    exc = status_error(response, response.json(), op="POST /videos", key_env="LUMENFALL_API_KEY")
    assert isinstance(exc, RejectedError) and exc.code == "INSUFFICIENT_BALANCE" and exc.status == status, exc
    assert code in str(exc) and "top up" in str(exc)


@pytest.mark.parametrize("code", ["rate_limit_exceeded", "RATE_QUOTA_EXCEEDED", "BILLING_SERVICE_UNAVAILABLE"])
def test_a_429_whose_code_names_a_rate_or_a_passing_trouble_is_still_a_rate_limit(code: str) -> None:
    from runner.errors import RateLimitedError
    from runner.providers.transport import status_error

    response = httpx.Response(429, json={"error": {"code": code, "message": "slow down"}},
                              request=httpx.Request("POST", "http://127.0.0.1:9/v1/videos"))
    exc = status_error(response, response.json(), op="POST /videos", key_env="LUMENFALL_API_KEY")
    assert isinstance(exc, RateLimitedError), exc


@pytest.mark.parametrize(("status", "code", "message"), ACCOUNT_REFUSALS, ids=[c[1] for c in ACCOUNT_REFUSALS])
def test_a_create_refused_for_the_quota_stops_the_run_at_once_as_a_402_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int, code: str, message: str
) -> None:
    """Not retried as a rate limit (9 creates per job), nor rejected job by job: the first stops the run, every job
    left planned for a plain run once the balance is topped up."""
    seen: list[httpx.Request] = []
    refused = httpx.Response(status, json={"error": {"code": code, "type": code, "message": message}})
    m = manifest(tmp_path)
    result = api.run(m, provider=fake_lumenfall(answering(seen, refused)), options=RunOptions(), report=False)
    assert len(creates(seen)) == 1, len(creates(seen))
    assert result.exit_code == 1 and result.status == "refused" and result.refused == "INSUFFICIENT_BALANCE"
    assert {j.state for j in api.status(m).jobs} == {"planned"}


@pytest.mark.parametrize(("code", "account"), [
    ("insufficient_quota", True), ("QUOTA_EXCEEDED", True), ("INSUFFICIENT_BALANCE", True),
    ("billing_hard_limit_reached", True), ("insufficient_credits", True),
    # a quota of a time or of requests at once is a rate limit, waited out; a code about a field is the request's
    ("PER_MINUTE_QUOTA_EXCEEDED", False), ("concurrent_requests_quota_exceeded", False),
    ("DAILY_QUOTA_EXCEEDED", False), ("tokens_per_min_quota", False), ("INVALID_BALANCE_PARAMETER", False),
    ("BILLING_SERVICE_UNAVAILABLE", False), ("rate_limit_exceeded", False),
])
def test_which_codes_refuse_the_account(code: str, account: bool) -> None:
    from runner.options import account_refused

    assert account_refused(code) is account


def test_the_time_a_provider_is_unavailable_until_has_its_date_on_another_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Retry-After of 23 hours at 05:33 ends tomorrow at 04:33: said with its date, not as a time earlier than now;
    one of the most a Retry-After is taken for (a day) may be longer: "at least"."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        now = 1796621637.5  # 2026-12-07 05:33:57 UTC
        assert executor.unavailable_until_text(now + 600, now=now) == "05:43"
        assert executor.unavailable_until_text(now + 23 * 3600, now=now) == "2026-12-08 04:33"
        assert executor.unavailable_until_text(now + 86_400, now=now) == "at least 2026-12-08 05:33"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
