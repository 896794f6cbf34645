"""`provider: sim` is free: it sends only to gridrun's simulator. A `base_url:` off this machine is refused at its
line; one on it that does not answer as a simulator (its `X-Gridrun-Simulator` header) gets no create, and no key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main
from runner.errors import EndpointError
from runner.options import RunOptions
from runner.providers import get_provider
from runner.providers.sim import SimProvider

URL = "http://127.0.0.1:9/v1"


def not_a_simulator(seen: list[httpx.Request], *, unanswered: int = 0) -> Any:
    """A server that answers every request as a provider would, with no simulator header; its first `unanswered`
    requests get no answer (the connection refused)."""
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= unanswered:
            raise httpx.ConnectError("connection refused", request=request)
        if request.method == "POST":
            return httpx.Response(202, json={"id": "video_1", "object": "video", "status": "queued",
                                             "model": "pixverse-v5.6", "created_at": 0})
        return httpx.Response(200, json={"balance": 100.0, "currency": "USD", "unlimited": False})
    return handler


def served_by(monkeypatch: pytest.MonkeyPatch, handler: Any) -> None:
    made = SimProvider.client

    def client(self: SimProvider, **kw: Any) -> httpx.AsyncClient:
        return made(self, **kw, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(SimProvider, "client", client)


@pytest.mark.parametrize("url", ["https://api.lumenfall.ai/v1", "https://evil.example.com/v1"])
def test_a_base_url_off_this_machine_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), base_url=url)
    assert main(["validate", str(m)]) == 2
    err = capsys.readouterr().err
    line = m.read_text().splitlines().index(f"base_url: {url}") + 1
    assert f"{m}:{line}:1: base_url: '{url}' would send the requests to {url.rsplit('/', 1)[0]}, not to this " \
           "machine" in err, err
    assert "gridrun's simulator" in err and "name that provider in `provider:`" in err
    assert "sim's own API" not in err


def test_a_base_url_that_is_not_a_simulator_gets_no_create_nor_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway or proxy on this machine may lead to a paid API: without the simulator's header, the run is
    refused before it sends anything but the check itself, which carries no key."""
    monkeypatch.setenv("SIM_API_KEY", "k-served-0123456789")
    seen: list[httpx.Request] = []
    served_by(monkeypatch, not_a_simulator(seen))
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), base_url=URL)
    line = m.read_text().splitlines().index(f"base_url: {URL}") + 1
    assert main(["run", str(m), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert f"{URL} (`base_url:` at {m}:{line}:1) is not gridrun's simulator" in err, err
    assert "X-Gridrun-Simulator" in err and "no create was sent" in err
    assert seen and not [r for r in seen if r.method == "POST"], [r.url for r in seen]
    assert not [r for r in seen if "authorization" in r.headers]


def test_a_base_url_unanswered_at_first_is_checked_again_before_its_first_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing answered when the run began (nothing could be sent then either): each create asks first, and one that
    then meets a server that is not a simulator is not sent; the run stops, its jobs planned."""
    seen: list[httpx.Request] = []
    prov = get_provider("sim", base_url=URL)
    made = prov.client
    prov.client = lambda **kw: made(**kw, transport=httpx.MockTransport(not_a_simulator(seen, unanswered=1)))  # type: ignore[method-assign]
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), base_url=URL, run={"concurrency": 1})
    result = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert result.exit_code == 1 and result.refused == "NOT_A_SIMULATOR", (result.status, result.stats.last_errors)
    assert not [r for r in seen if r.method == "POST"], [(r.method, r.url) for r in seen]
    assert {j.state for j in api.status(m).jobs} == {"planned"}
    assert any("is not gridrun's simulator" in e for e in result.stats.last_errors), result.stats.last_errors


def test_a_served_simulator_that_wants_a_key_shows_itself_without_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The check goes without the key; a simulator given --api-key answers it 401, with its header: a simulator."""
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server

    monkeypatch.setenv("SIM_API_KEY", "k-served-0123456789")
    config = SimConfig.from_dict({"render_time": 0.1, "jitter": 0.0, "api_key": "k-served-0123456789"})
    with running_server(config) as url:
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), base_url=url, run={"poll_interval": 0.05})
        result = api.run(m, options=RunOptions(), report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 2, result.stats.last_errors


def test_the_check_error_is_raised_before_the_run_sends_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    """`prepare` itself refuses: the run's balance check, the first request it sends, never comes."""
    import anyio

    seen: list[httpx.Request] = []
    prov = get_provider("sim", base_url=URL)
    client = prov.client(transport=httpx.MockTransport(not_a_simulator(seen)))

    async def go() -> None:
        async with client:
            await prov.prepare(client)

    with pytest.raises(EndpointError) as caught:
        anyio.run(go)
    assert caught.value.base_url == URL and "the manifest's `base_url:`" in str(caught.value)
    assert [r.url.path for r in seen] == ["/v1/_sim/config"]


def test_a_base_url_where_nothing_listens_says_so_as_polls_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listening at a served simulator's address (stopped, stopping, a port mistyped): the run says the
    system's own reason, in the words a poll uses, not that some server there failed the check; nothing is sent."""
    import socket

    with socket.socket() as held:  # a port nothing listens on
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), base_url=url)
    assert main(["run", str(m), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert f"POST /videos: could not connect to 127.0.0.1:{port} (Connection refused); the request was not sent " \
           f"(is `gridrun sim serve` running at {url}?)" in err, err
    assert "did not answer the check" not in err
    assert {j.state for j in api.status(m).jobs} == {"planned"}


def test_a_check_failing_on_a_connection_made_names_how_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Something took the connection but gave no answer to the check: the create is not sent, and the error says
    what the check met."""
    import anyio

    from runner.errors import ConnectError

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    prov = get_provider("sim", base_url=URL)
    client = prov.client(transport=httpx.MockTransport(handler))

    async def go() -> None:
        async with client:
            await prov.prepare(client)  # unanswered: each create asks again
            await prov.submit(client, {"model": "pixverse-v5.6", "prompt": "a fox"})

    with pytest.raises(ConnectError) as caught:
        anyio.run(go)
    assert str(caught.value.message) == (f"POST /videos: {URL} did not answer the check that it is gridrun's simulator "
                                         "(ReadTimeout: timed out); the request was not sent"), caught.value.message
    assert seen and not [r for r in seen if r.method == "POST"], [(r.method, r.url) for r in seen]
