from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_kit import BASE, Api, FakeClock

from runner.sim import SimConfig, SimulatedReset, create_app, running_server
from runner.sim.config import ConfigError, FaultRule

pytestmark = pytest.mark.anyio


def script(*rules: dict[str, Any]) -> list[dict[str, Any]]:
    return list(rules)


async def test_rate_limit_is_a_token_bucket_on_the_sim_clock(api: Api) -> None:
    api.configure(rate_limit=2, rate_burst=2)
    codes = [(await api.client.get("/videos")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = await api.client.get("/videos")
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "RATE_LIMITED"
    api.clock.advance(0.5)
    assert (await api.client.get("/videos")).status_code == 200
    assert (await api.client.get("/videos")).status_code == 429
    assert api.stats()["throttled"] == 3


@pytest.mark.parametrize(
    ("style", "present", "absent"),
    [
        ("seconds", {"retry-after"}, {"retry-after-ms"}),
        ("ms", {"retry-after-ms"}, {"retry-after"}),
        ("date", {"retry-after"}, {"retry-after-ms"}),
        ("body", set(), {"retry-after", "retry-after-ms"}),
        ("none", set(), {"retry-after", "retry-after-ms"}),
    ],
)
async def test_injected_429_gives_its_retry_hint_in_the_chosen_style(api: Api, style: str, present: set[str], absent: set[str]) -> None:
    api.configure(script=script({"route": "get", "nth": 1, "fault": "rate_limited", "retry_after": 7, "retry_style": style}))
    video = (await api.create()).json()["id"]
    r = await api.client.get(f"/videos/{video}")
    assert r.status_code == 429
    assert present <= set(r.headers) and not absent & set(r.headers)
    body = r.json()
    assert body["error"]["code"] == "RATE_LIMITED"
    if style == "seconds":
        assert r.headers["retry-after"] == "7"
    if style == "ms":
        assert r.headers["retry-after-ms"] == "7000"
    if style == "date":
        assert parsedate_to_datetime(r.headers["retry-after"]).timestamp() == api.clock.now + 7
    if style == "body":
        assert body["retry_after"] == 7 and body["status"] == 429 and "throttled" in body["detail"]
    else:
        assert "retry_after" not in body
    assert (await api.client.get(f"/videos/{video}")).status_code == 200


@pytest.mark.parametrize(("status", "code"), [(500, "INTERNAL_ERROR"), (502, "ALL_PROVIDERS_EXHAUSTED"), (503, "UPSTREAM_ERROR"), (504, "UPSTREAM_ERROR")])
async def test_server_errors_carry_lumenfall_codes(api: Api, status: int, code: str) -> None:
    api.configure(script=script({"route": "create", "nth": 1, "fault": "server_error", "status": status}))
    r = await api.create()
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["type"] == "server_error"
    assert api.stats()["creates"] == 0


async def test_error_rate_draws_statuses_from_the_configured_list(api: Api) -> None:
    api.configure(error_rate=1.0, error_statuses=[502, 503])
    codes = {(await api.client.get("/videos")).status_code for _ in range(20)}
    assert codes == {502, 503}
    assert api.stats()["faults"]["server_error"] == 20


async def test_reset_before_a_create_raises_in_process_and_creates_nothing(api: Api) -> None:
    api.configure(script=script({"route": "create", "nth": 1, "fault": "reset_before"}))
    with pytest.raises(SimulatedReset) as info:
        await api.create(idempotency_key="k")
    assert info.value.phase == "before"
    assert api.stats()["creates"] == 0
    assert (await api.create(idempotency_key="k")).status_code == 202


async def test_reset_after_create_pays_for_a_video_the_client_never_hears_of(api: Api) -> None:
    api.configure(script=script({"route": "create", "nth": 1, "fault": "reset_after_create"}))
    with pytest.raises(SimulatedReset) as info:
        await api.create(idempotency_key="gridrun-k-1")
    assert info.value.phase == "after" and info.value.route == "create"
    assert api.stats()["creates"] == 1
    replay = await api.create(idempotency_key="gridrun-k-1")
    assert replay.status_code == 200
    assert api.stats()["creates"] == 1 and api.stats()["duplicate_paid"] == 0
    log = (await api.client.get("http://sim.test/v1/requests", params={"idempotency_key": "gridrun-k-1"})).json()["data"]
    assert log[0]["video_id"] == replay.json()["id"]


async def test_a_held_create_is_made_and_paid_only_when_released(api: Api) -> None:
    """A gateway holds the create: the client hears nothing, the request log has nothing yet, and the video is
    made (and billed, once more at a provider that ignores keys) only when the hold is released."""
    api.configure(honour_idempotency=False, script=script({"route": "create", "nth": 1, "fault": "held"}))
    with pytest.raises(SimulatedReset) as info:
        await api.create(idempotency_key="k")
    assert info.value.phase == "held" and api.stats()["creates"] == 0
    assert (await api.client.get("http://sim.test/v1/requests", params={"idempotency_key": "k"})).json()["data"] == []
    api.clock.advance(3.0)
    assert api.sim.release_held() == 1 and api.sim.release_held() == 0
    log = (await api.client.get("http://sim.test/v1/requests", params={"idempotency_key": "k"})).json()["data"]
    assert len(log) == 1 and api.stats()["creates"] == 1
    assert (await api.video(log[0]["video_id"]))["created_at"] == int(api.clock())  # as it lands, not as sent
    assert (await api.create(idempotency_key="k")).status_code == 202  # the key ignored: a second video, paid
    assert api.stats()["duplicate_paid"] == 1


def test_a_served_simulator_releases_held_creates_when_asked() -> None:
    config = SimConfig(render_time=0, script=(FaultRule("held", route="create", nth=(1,)),))
    with running_server(config) as url, httpx.Client(base_url=url) as c:
        with pytest.raises(httpx.TransportError):
            c.post("/videos", json={"model": "pixverse-v5.6", "prompt": "a red fox", "idempotency_key": "k"})
        assert c.get("/_sim/stats").json()["creates"] == 0
        assert c.post("/_sim/release").json() == {"released": 1}
        assert c.get("/_sim/stats").json()["creates"] == 1


async def test_reset_rate_splits_between_before_and_after(api: Api) -> None:
    api.configure(reset_rate=1.0)
    for _ in range(20):
        with pytest.raises(SimulatedReset):
            await api.client.get("/videos")
    faults = api.stats()["faults"]
    assert faults["reset_before"] + faults["reset_after"] == 20
    assert faults["reset_before"] > 0 and faults["reset_after"] > 0


async def test_slow_delays_the_response(api: Api) -> None:
    api.configure(script=script({"route": "list", "nth": 1, "fault": "slow", "delay": 0.2}))
    started = time.perf_counter()
    r = await api.client.get("/videos")
    assert r.status_code == 200
    assert time.perf_counter() - started >= 0.2


async def test_stall_body_sends_half_then_waits(api: Api) -> None:
    api.configure(script=script({"route": "list", "nth": 1, "fault": "stall_body", "delay": 0.1}))
    started = time.perf_counter()
    r = await api.client.get("/videos")
    assert r.status_code == 200 and r.json()["object"] == "list"
    assert time.perf_counter() - started >= 0.1


@pytest.mark.parametrize(("fault", "status", "code"), [
    ("auth_failed", 401, "AUTHENTICATION_FAILED"),
    ("insufficient_balance", 402, "INSUFFICIENT_BALANCE"),
    ("model_disabled", 404, "MODEL_DISABLED"),
])
async def test_injected_refusals(api: Api, fault: str, status: int, code: str) -> None:
    api.configure(script=script({"route": "create", "nth": 1, "fault": fault}))
    r = await api.create()
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert api.stats()["creates"] == 0


async def test_not_found_answers_a_get_as_for_a_video_the_provider_does_not_know(api: Api) -> None:
    api.configure(script=script({"route": "get", "nth": [1, 2], "fault": "not_found"}))
    video = (await api.create()).json()["id"]
    first = await api.client.get(f"/videos/{video}")
    assert (first.status_code, first.json()["error"]["code"]) == (404, "NOT_FOUND")
    assert (await api.client.get(f"/videos/{video}")).status_code == 404
    assert (await api.video(video))["id"] == video  # the third call finds it again


async def test_not_found_answers_the_request_log_as_a_route_an_api_does_not_have(api: Api) -> None:
    api.configure(script=script({"route": "requests", "p": 1.0, "fault": "not_found"}))
    await api.create()
    r = await api.client.get("http://sim.test/v1/requests")
    assert (r.status_code, r.json()["error"]["code"], r.json()["error"]["message"]) == (404, "NOT_FOUND",
                                                                                        "no such route")


@pytest.mark.parametrize(("status", "code"), [(None, "METHOD_NOT_ALLOWED"), (501, "NOT_IMPLEMENTED")])
async def test_not_allowed_refuses_a_cancel_and_leaves_the_video_rendering(
        api: Api, status: int | None, code: str) -> None:
    rule = {"route": "delete", "p": 1.0, "fault": "not_allowed"}
    api.configure(render_time=30.0, script=script(rule if status is None else {**rule, "status": status}))
    video = (await api.create()).json()["id"]
    r = await api.client.delete(f"/videos/{video}")
    assert (r.status_code, r.json()["error"]["code"]) == (status or 405, code)
    assert (r.headers.get("allow") == "GET") == (status is None)
    assert (await api.video(video))["status"] in ("queued", "in_progress")
    assert api.stats()["cancelled"] == 0


async def test_balance_runs_out_with_a_402(api: Api) -> None:
    api.configure(balance=1.0)
    codes = [(await api.create(prompt=f"p{i}")).status_code for i in range(3)]
    assert codes == [202, 202, 402]
    balance = (await api.client.get("http://sim.test/v1/balance")).json()
    assert balance["balance"] == pytest.approx(0.3)


async def test_malformed_json_still_creates_the_video(api: Api) -> None:
    api.configure(script=script({"route": "create", "nth": 1, "fault": "malformed_json"}))
    r = await api.create()
    assert r.status_code == 202
    with pytest.raises(ValueError):
        r.json()
    assert api.stats()["creates"] == 1


async def test_unknown_status_value(api: Api) -> None:
    api.configure(script=script({"route": "get", "nth": 1, "fault": "unknown_status", "value": "moderating"}))
    video = (await api.create()).json()["id"]
    assert (await api.video(video))["status"] == "moderating"
    assert (await api.video(video))["status"] == "queued"


async def test_job_failure_by_script_uses_its_code(api: Api) -> None:
    api.configure(script=script({"route": "create", "nth": 2, "fault": "job_failure", "code": "UPSTREAM_ERROR"}))
    ok = (await api.create(prompt="a")).json()["id"]
    bad = (await api.create(prompt="b")).json()["id"]
    api.clock.advance(11)
    assert (await api.video(ok))["status"] == "completed"
    failed = await api.video(bad)
    assert failed["status"] == "failed" and failed["error"]["code"] == "UPSTREAM_ERROR"


async def test_rules_fire_on_their_nth_calls_at_most_times_times(api: Api) -> None:
    api.configure(script=script({"route": "list", "nth": [2, 3, 4], "times": 2, "fault": "server_error", "status": 503}))
    codes = [(await api.client.get("/videos")).status_code for _ in range(5)]
    assert codes == [200, 503, 503, 200, 200]


async def test_probabilistic_faults_are_the_same_for_the_same_seed() -> None:
    async def codes(seed: int) -> list[int]:
        app = create_app(SimConfig(seed=seed, error_rate=0.3), clock=FakeClock())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            return [(await client.get("/videos")).status_code for _ in range(30)]

    first = await codes(5)
    assert first == await codes(5)
    assert first != await codes(6)
    assert 0 < first.count(200) < 30


async def test_faults_can_be_patched_at_runtime_and_reset(api: Api) -> None:
    r = await api.client.post("http://sim.test/_sim/config", json={"script": [{"route": "*", "fault": "server_error", "nth": 1, "status": 500}]})
    assert r.status_code == 200
    assert r.json()["script"] == [{"fault": "server_error", "route": "*", "nth": [1], "status": 500}]
    assert (await api.create()).status_code == 500
    assert (await api.create()).status_code == 202
    bad = await api.client.post("http://sim.test/_sim/config", json={"render_tiem": 1})
    assert bad.status_code == 400 and "render_tiem" in bad.json()["error"]["message"]
    assert (await api.client.post("http://sim.test/_sim/reset")).status_code == 204
    stats = (await api.client.get(f"{BASE}/_sim/stats")).json()
    assert stats["creates"] == 0 and stats["requests"] == {}


async def test_control_routes_need_no_key_but_the_api_does() -> None:
    app = create_app(SimConfig(api_key="k"), clock=FakeClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        assert (await client.get("http://sim.test/_sim/stats")).status_code == 200
        assert (await client.get("/videos")).status_code == 401
        assert (await client.get("http://sim.test/_sim/config")).json()["api_key"] == "***"


def test_fault_rules_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown fault 'explode'"):
        FaultRule.from_dict({"fault": "explode"})
    with pytest.raises(ConfigError, match="unknown route 'upload'"):
        FaultRule.from_dict({"fault": "slow", "route": "upload"})
    with pytest.raises(ConfigError, match="unknown key 'when'"):
        FaultRule.from_dict({"fault": "slow", "when": 3})
    assert FaultRule.from_dict({"fault": "reset_after_create", "route": "create", "nth": 3}).nth == (3,)


def test_config_round_trips_through_a_dict() -> None:
    config = SimConfig(seed=3, failure_rate=0.2, script=(FaultRule("truncated", route="file", p=0.5),))
    assert SimConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="concurrency must be a number"):
        SimConfig.from_dict({"concurrency": "many"})
    with pytest.raises(ConfigError, match="honour_idempotency must be true or false"):
        SimConfig.from_dict({"honour_idempotency": "no"})
    assert SimConfig(script=[{"fault": "slow", "p": 1}]).script == (FaultRule("slow", p=1.0),)  # type: ignore[arg-type]


async def test_injected_5xx_on_a_create_with_an_unreadable_body_still_answers(api: Api) -> None:
    api.configure(script=script({"route": "create", "nth": 1, "fault": "server_error", "status": 500}))
    r = await api.client.post("/videos", content=b"garbage", headers={"content-type": "application/json"})
    assert r.status_code == 500
    assert (await api.client.get("http://sim.test/v1/requests")).json()["data"][0]["status"] == "upstream_failure"


@pytest.mark.parametrize(
    ("knobs", "named"),
    [
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"cancel_charge": 1.5}, "cancel_charge must be between 0 and 1, got 1.5"),
        ({"concurrency": 0}, "concurrency"),
        ({"expired_status": 500}, "expired_status"),
        ({"retry_after_style": "soon"}, "retry_after_style"),
        ({"idempotency_conflict": "merge"}, "idempotency_conflict"),
        ({"balance": "lots"}, "balance"),
        ({"url_ttl": -1}, "url_ttl"),
    ],
)
def test_bad_knobs_are_refused_naming_the_knob(knobs: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        SimConfig.from_dict(knobs)


NUMBER_KNOBS = [f.name for f in dataclasses.fields(SimConfig) if f.type in ("int", "float", "float | None")]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", NUMBER_KNOBS)
def test_a_knob_that_is_no_finite_number_is_refused_naming_the_knob(name: str, value: float) -> None:
    """NaN passes every `< 0` test and infinity overflows the sim's integer costs and clocks mid-run."""
    with pytest.raises(ConfigError, match=f"^{name} must be (a finite number|between 0 and 1)"):
        SimConfig.from_dict({name: value})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"fault": "slow", "delay": float("nan")}, "delay must be a finite number ≥ 0 or null, got nan"),
        ({"fault": "rate_limited", "retry_after": float("inf")}, "retry_after must be a finite number ≥ 0 or null"),
        ({"fault": "slow", "nth": float("inf")}, "nth must be call numbers"),
        ({"fault": "slow", "times": float("nan")}, "times must be a whole number ≥ 0 or null"),
        ({"fault": "server_error", "status": float("inf")}, "status must be a whole number ≥ 0 or null"),
    ],
)
def test_a_fault_rule_number_that_is_no_finite_number_is_refused(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^script: {message}"):
        SimConfig.from_dict({"script": [rule]})


@pytest.mark.parametrize("value", [1e308, 10**400])
@pytest.mark.parametrize("name", NUMBER_KNOBS)
def test_a_knob_of_a_huge_finite_figure_is_refused_naming_the_knob(name: str, value: float) -> None:
    """1e308 is finite, yet a balance or a cost in micro-dollars overflowed mid-run and a render time of it made
    a run wait for ever; a whole number past a float's range is no traceback either."""
    with pytest.raises(ConfigError, match=f"^{name} must be "):
        SimConfig.from_dict({name: value})


def test_every_knob_takes_its_upper_bound_and_the_simulator_counts_with_it() -> None:
    """The bounds themselves are figures a run can use: a balance of $1e9 in micro-dollars and a cost reported
    1,000,000 times over stay whole numbers. render_time and time_scale take theirs apart, their product bounded."""
    from runner.sim.config import DAY, MAX_COUNT, MAX_FACTOR, MAX_USD
    from runner.sim.engine import Sim

    tops = {"render_time": DAY, "url_ttl": DAY, "slow_delay": DAY, "retry_after": DAY, "idempotency_window": DAY,
            "time_scale": MAX_FACTOR, "rate_limit": MAX_FACTOR, "cost_factor": MAX_FACTOR, "balance": MAX_USD,
            "concurrency": MAX_COUNT, "rate_burst": MAX_COUNT, "clip_variants": MAX_COUNT, "max_side": 8192,
            "fps": 240, "seed": 2**63 - 1}
    config = SimConfig.from_dict({**tops, "time_scale": 1.0})
    assert SimConfig.from_dict({"render_time": DAY / MAX_FACTOR, "time_scale": MAX_FACTOR}).time_scale == MAX_FACTOR
    sim = Sim(dataclasses.replace(config, render_time=0.0, time_scale=1.0, max_side=64, fps=4), clock=FakeClock())
    video, _ = sim.create({"model": "pixverse-v5.6", "quality": "360p", "duration": 5, "prompt": "p"})
    assert sim.reported_micros(video) == video.cost_micros * 1_000_000
    for name, top in tops.items():
        with pytest.raises(ConfigError, match=f"^{name} must be "):
            SimConfig.from_dict({name: top * 2 if name != "seed" else 2**63})


def test_a_render_time_scaled_past_a_day_is_refused_naming_both_knobs_whichever_was_changed() -> None:
    """Each within its bound, render_time × time_scale made a render a run waited on for ever: refused, from a
    config, from a patch of one of them over the other (`POST /_sim/config`), and up to a day taken."""
    from runner.sim.config import DAY
    from runner.sim.engine import Sim

    message = "^render_time × time_scale, a render's mean time, must be at most 86,400 seconds \\(a day\\), got "
    with pytest.raises(ConfigError, match=message + "86400.0 × 1.5 = 129,600 seconds: lower one of them$") as refused:
        SimConfig(render_time=DAY, time_scale=1.5)
    assert refused.value.knobs == ("render_time", "time_scale")
    sim = Sim(SimConfig(render_time=10.0, time_scale=8640.0), clock=FakeClock())
    for patch in ({"time_scale": 8641.0}, {"render_time": 10.01}):
        with pytest.raises(ConfigError, match=message):
            sim.configure(patch)
    assert sim.config.render_time * sim.config.time_scale == DAY


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"fault": "slow", "delay": 1e308}, "delay must be at most 86,400 seconds \\(a day\\), got 1e\\+308"),
        ({"fault": "rate_limited", "retry_after": 10**400},
         "retry_after must be at most 86,400 seconds \\(a day\\), got a number of 401 digits"),
        ({"fault": "slow", "times": 10**9}, "times must be at most 1,000,000"),
        ({"fault": "server_error", "status": 600}, "status must be an HTTP status \\(100 to 599\\), got 600"),
        ({"fault": "slow", "nth": 0}, "nth must be call numbers from 1 to 1,000,000,000, got 0"),
        ({"fault": "slow", "nth": 1e308}, "nth must be call numbers from 1 to 1,000,000,000, got a number of 309"),
    ],
)
def test_a_fault_rule_figure_past_its_bound_is_refused(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^script: {message}"):
        SimConfig.from_dict({"script": [rule]})


@pytest.mark.parametrize("statuses", [[], [600], [float("inf")], ["x"], [True]])
def test_error_statuses_that_are_no_http_statuses_are_refused(statuses: list[Any]) -> None:
    """An empty list failed the first injected 5xx (a draw from nothing); inf or "x" was a traceback."""
    with pytest.raises(ConfigError, match=r"^error_statuses must be a list of HTTP statuses \(100 to 599\)"):
        SimConfig.from_dict({"error_statuses": statuses})


def test_a_script_that_is_no_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="^script must be a list of fault rules, got nan"):
        SimConfig.from_dict({"script": float("nan")})


async def test_changing_the_simulator_needs_its_key_and_a_json_body_from_its_own_origin() -> None:
    app = create_app(SimConfig(api_key="k"), clock=FakeClock())
    key = {"authorization": "Bearer k"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        for url in ("http://sim.test/_sim/config", "http://sim.test/v1/_sim/config"):
            assert (await client.post(url, json={"api_key": None})).status_code == 401
            assert (await client.patch(url, json={"api_key": None})).status_code == 401
        assert (await client.post("http://sim.test/_sim/reset")).status_code == 401
        assert (await client.get("/videos")).status_code == 401  # the key still holds
        text = await client.post("http://sim.test/_sim/config", headers={**key, "content-type": "text/plain"},
                                 content=b'{"failure_rate": 1.0}')
        assert text.status_code == 415
        form = await client.post("http://sim.test/_sim/config", headers=key, data={"failure_rate": "1.0"})
        assert form.status_code == 415
        other = await client.post("http://sim.test/_sim/reset", headers={**key, "origin": "https://evil.example"})
        assert other.status_code == 403
        assert (await client.get("http://sim.test/_sim/config")).json()["failure_rate"] == 0
        assert (await client.post("http://sim.test/_sim/config", headers=key, json={"seed": 3})).status_code == 200
        assert (await client.post("http://sim.test/_sim/reset", headers=key)).status_code == 204


async def test_a_client_gone_during_a_slow_fault_is_dropped_quietly_and_makes_nothing() -> None:
    """A run killed while its create waits out a `slow` fault: the request ends without an error (no traceback in
    `sim serve`'s output), nothing made, nothing sent back."""
    app = create_app(SimConfig(slow_rate=1.0, slow_delay=0.01), clock=FakeClock())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/videos", "raw_path": b"/v1/videos", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"sim.test"), (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("sim.test", 80)}
    await app(scope, receive, send)
    assert sent == [] and app.state.sim.stats()["creates"] == 0


def test_a_fault_rule_with_neither_p_nor_nth_is_refused_since_it_never_fires(tmp_path: Path) -> None:
    """`{route: create, fault: auth_failed}` was taken and injected nothing: a test of a failure path that never
    ran. Refused, in a knobs file of `gridrun sim serve` too; with `p` or `nth` it stands."""
    from runner.sim.serve import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)

    never = "the auth_failed rule needs p (a probability above 0) or nth (the calls it hits): with neither it never fires"
    with pytest.raises(ConfigError, match=re.escape(never)):
        FaultRule.from_dict({"route": "create", "fault": "auth_failed"})
    with pytest.raises(ConfigError, match="never fires"):
        FaultRule.from_dict({"route": "create", "fault": "auth_failed", "nth": []})
    knobs = tmp_path / "knobs.json"
    knobs.write_text(json.dumps({"script": [{"route": "create", "fault": "auth_failed"}]}))
    with pytest.raises(ConfigError, match=re.escape(f"{knobs}: script: {never}")):
        config_from_args(parser.parse_args(["--config", str(knobs)]))
    assert FaultRule.from_dict({"route": "create", "fault": "auth_failed", "p": 0.5}).p == 0.5
    # p written as 0 (a usual way to switch a rule off) is told as such, not as a p left out
    with pytest.raises(ConfigError, match=re.escape(
            "the slow rule has p 0 and no nth (the calls it hits), so it never fires: give p above 0 or nth, or leave "
            "the rule out")):
        FaultRule.from_dict({"route": "create", "fault": "slow", "delay": 1, "p": 0})
    assert FaultRule.from_dict({"route": "create", "fault": "auth_failed", "nth": 1}).nth == (1,)
