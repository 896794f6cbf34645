"""The `sim` provider in-process: the Lumenfall client through httpx.ASGITransport, no port, no key."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from runner.errors import DownloadError, OutcomeUnknownError, RejectedError, TransportError, UsageError
from runner.providers import VideoStatus, get_provider
from runner.providers.sim import SimProvider
from runner.sim import SimulatedReset

KNOBS: dict[str, Any] = {"render_time": 0.05, "jitter": 0.0, "max_side": 64, "fps": 4}
PARAMS = {"prompt": "a red fox running through snow", "duration": 5, "quality": "540p", "seed": 7}


def sim(**knobs: Any) -> SimProvider:
    provider = get_provider("sim", sim_config={**KNOBS, **knobs})
    assert isinstance(provider, SimProvider)
    return provider


def body(provider: SimProvider, key: str = "gridrun-inproc-1") -> dict[str, Any]:
    return provider.build_request(PARAMS, model="pixverse-v5.6", idempotency_key=key)


async def until_done(provider: SimProvider, client: httpx.AsyncClient, video_id: str) -> VideoStatus:
    with anyio.fail_after(10):
        while not (status := await provider.get(client, video_id)).terminal:
            await anyio.sleep(0.02)
    return status


@pytest.mark.anyio
async def test_happy_path_in_process_with_clients_sharing_one_world(tmp_path: Path) -> None:
    provider = sim()
    assert provider.caps.has_list_endpoint and provider.caps.honours_idempotency_keys
    async with provider.client() as one, provider.client() as two:
        created = await provider.submit(one, body(provider))
        done = await until_done(provider, two, created.id)
        assert done.status == "completed" and done.url
        got = await provider.download(two, done.url, tmp_path / "fox.mp4")
        listed, _ = await provider.list(one)
    assert got.sha256 == hashlib.sha256((tmp_path / "fox.mp4").read_bytes()).hexdigest()
    assert got.size_bytes == done.size_bytes and got.content_type == "video/mp4"
    assert [v.id for v in listed] == [created.id]
    stats = provider.app.state.sim.stats()
    assert (stats["creates"], stats["downloads"]) == (1, 1)


@pytest.mark.anyio
async def test_each_provider_instance_has_its_own_world() -> None:
    a, b = sim(), sim()
    async with a.client() as ca, b.client() as cb:
        await a.submit(ca, body(a))
        assert (await a.list(ca))[0] and (await b.list(cb))[0] == []


@pytest.mark.anyio
async def test_no_key_is_needed_even_with_lumenfall_unset() -> None:
    provider = sim()
    async with provider.client() as client:
        assert "authorization" not in client.headers


@pytest.mark.anyio
async def test_reset_after_create_in_process_is_outcome_unknown_then_found() -> None:
    provider = sim(script=[{"route": "create", "fault": "reset_after", "nth": 1}])
    async with provider.client() as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await provider.submit(client, body(provider))
        found = await provider.find_by_key(client, "gridrun-inproc-1")
        again = await provider.submit(client, body(provider))
    assert isinstance(info.value.__cause__, SimulatedReset)
    assert found is not None and again.id == found.id
    assert provider.app.state.sim.stats()["creates"] == 1


@pytest.mark.anyio
async def test_reset_on_get_in_process_is_a_transport_error() -> None:
    provider = sim(script=[{"route": "get", "fault": "reset_before", "nth": 1}])
    async with provider.client() as client:
        with pytest.raises(TransportError) as info:
            await provider.get(client, "video_x")
    assert type(info.value) is TransportError


@pytest.mark.parametrize(
    ("kind", "code"), [("truncated", "TRUNCATED"), ("reset_mid_body", "TRUNCATED"), ("wrong_content_type", "WRONG_TYPE"), ("corrupt", "CORRUPT")]
)
@pytest.mark.anyio
async def test_download_faults_in_process(tmp_path: Path, kind: str, code: str) -> None:
    provider = sim(script=[{"route": "file", "fault": kind, "nth": 1}])
    async with provider.client() as client:
        created = await provider.submit(client, body(provider))
        done = await until_done(provider, client, created.id)
        with pytest.raises(DownloadError) as info:
            await provider.download(client, done.url or "", tmp_path / "a.mp4")
        assert info.value.code == code
        assert list(tmp_path.iterdir()) == []
        await provider.download(client, done.url or "", tmp_path / "a.mp4")
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]


def test_unknown_knob_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="nonsense"):
        get_provider("sim", sim_config={"nonsense": 1})


@pytest.mark.anyio
async def test_sim_over_http_when_given_a_base_url() -> None:
    provider = get_provider("sim", base_url="http://127.0.0.1:9/v1", sim_config={"nonsense": 1})
    assert isinstance(provider, SimProvider) and provider.remote
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": "no"}})

    async with provider.client(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(RejectedError):
            await provider.get(client, "v")
    assert seen == ["http://127.0.0.1:9/v1/videos/v"]


@pytest.mark.anyio
@pytest.mark.parametrize("honour", [True, False])
async def test_the_simulators_date_and_created_at_tell_a_replay_from_a_new_video(honour: bool) -> None:
    """The simulator stamps each answer with a Date off its own clock: a create's key sent again 10 s later is
    answered then, with the video made at the first send where keys are honoured, and with one made now where
    they are not."""
    from runner.sim import SimConfig, create_app

    now = [1_800_000_000.4]
    app = create_app(SimConfig.from_dict({**KNOBS, "honour_idempotency": honour}), clock=lambda: now[0])
    provider = sim()
    async with provider.client(transport=httpx.ASGITransport(app=app)) as client:
        first = await provider.submit(client, body(provider))
        now[0] += 10
        again = await provider.submit(client, body(provider))
    assert (first.created_at, first.answered_at) == (1_800_000_000, 1_800_000_000)
    assert again.answered_at == 1_800_000_010
    assert again.created_at == (1_800_000_000 if honour else 1_800_000_010)
    assert (again.id == first.id) is honour


CAPS_MODEL = """\
provider: sim
models:
  pixverse-v5.5:
    description: an older model, declared by the user
    render_seconds: 60
    params:
      prompt: {type: string, required: true, max_length: 2000, modes: [t2v]}
      quality: {type: string, enum: [540p, 720p], default: 540p, modes: [t2v]}
      duration: {type: integer, enum: [5, 8], default: 5, modes: [t2v]}
    prices:
      currency: USD
      as_of: "2026-11-01"
      source: a test
      base_5s: {540p: 0.20, 720p: 0.30}
      duration_factor: {5: 1.0, 8: 2.0}
"""
CAPS_PRICES = """\
provider: sim
models:
  pixverse-v5.6:
    prices:
      currency: USD
      as_of: "2026-12-01"
      source: a correction
      base_5s: {360p: 0.05, 540p: 0.05, 720p: 0.09, 1080p: 0.15}
"""


@pytest.mark.parametrize(("caps", "model", "price"), [(CAPS_MODEL, "pixverse-v5.5", 200_000),
                                                      (CAPS_PRICES, "pixverse-v5.6", 50_000)])
def test_the_built_in_simulator_simulates_the_manifest_capabilities_files(
    tmp_path: Path, caps: str, model: str, price: int
) -> None:
    """A model a manifest's capabilities file declares is planned, so the rehearsal renders it; prices it corrects
    are the ones the simulator bills, with no warning of a bill above its estimate."""
    from runner import api
    from runner.options import RunOptions

    (tmp_path / "caps.yaml").write_text(caps, encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text(f"version: 1\nname: m\nprovider: sim\nmodel: {model}\ncapabilities: [caps.yaml]\n"
                 "params: {prompt: 'a {{ animal }}', quality: 540p, duration: 5}\nmatrix: {animal: [cat, dog]}\n"
                 "output: '{{ animal }}.mp4'\nsim: {render_time: 0.05, jitter: 0.0}\nrun: {poll_interval: 0.05}\n",
                 encoding="utf-8")
    assert api.plan(m).total_micros == 2 * price
    result = api.run(m, options=RunOptions(), report=False)
    assert result.exit_code == 0, result.stats.last_errors
    jobs = api.status(m).jobs
    assert [(j.state, j.cost_reported_micros) for j in jobs] == [("done", price)] * 2
    assert not any("billed" in e for e in result.stats.last_errors), result.stats.last_errors
