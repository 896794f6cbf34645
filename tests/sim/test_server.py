"""The simulator over real HTTP: resets and truncations must reach an httpx client as transport errors."""

from __future__ import annotations

import argparse
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_kit import MODEL

from runner.sim import FaultRule, SimConfig, running_server
from runner.sim.config import ConfigError
from runner.sim.serve import add_arguments, config_from_args, parse_fault

TRANSPORT_ERRORS = (httpx.ReadError, httpx.RemoteProtocolError)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(SimConfig(render_time=0.05, jitter=0, max_side=64)) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=5) as c:
        c.post("/_sim/reset")
        yield c


def configure(client: httpx.Client, *rules: dict[str, Any], **knobs: Any) -> None:
    r = client.post("/_sim/config", json={"script": list(rules), **knobs})
    assert r.status_code == 200, r.text


def stats(client: httpx.Client) -> dict[str, Any]:
    return dict(client.get("/_sim/stats").json())


def create(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/videos", json={"model": MODEL, "prompt": "a fox", **body})


def wait_completed(client: httpx.Client, video_id: str) -> dict[str, Any]:
    """Poll until done: this server runs on the real clock, with 0.05 s renders."""
    for _ in range(500):
        video = client.get(f"/videos/{video_id}").json()
        if video["status"] == "completed":
            return dict(video)
        time.sleep(0.01)
    raise AssertionError("the video did not complete")


def test_running_server_yields_the_v1_base_url(server: str) -> None:
    assert server.startswith("http://127.0.0.1:") and server.endswith("/v1")


def test_reset_before_create_is_a_transport_error_and_creates_nothing(client: httpx.Client) -> None:
    configure(client, {"route": "create", "nth": 1, "fault": "reset_before"})
    with pytest.raises(TRANSPORT_ERRORS):
        create(client, idempotency_key="k")
    assert stats(client)["creates"] == 0
    assert create(client, idempotency_key="k").status_code == 202


def test_reset_after_create_is_a_transport_error_but_the_video_exists(client: httpx.Client) -> None:
    configure(client, {"route": "create", "nth": 1, "fault": "reset_after_create"})
    with pytest.raises(TRANSPORT_ERRORS):
        create(client, idempotency_key="gridrun-x-1")
    assert stats(client)["creates"] == 1
    replay = create(client, idempotency_key="gridrun-x-1")
    assert replay.status_code == 200
    assert stats(client)["duplicate_paid"] == 0


def test_a_served_sim_holds_1080p_beside_a_size_to_its_8_seconds(client: httpx.Client) -> None:
    """The quality is sent beside a size in pixels, and may be the one rendered: its 8 s limit holds."""
    configure(client)  # no faults
    r = create(client, size="1365x768", quality="1080p", duration=10)
    assert r.status_code == 400, r.text
    r = create(client, size="1365x768", quality="1080p", duration=8)
    assert r.status_code == 202, r.text
    assert stats(client)["creates"] == 1


def test_truncated_download_breaks_off_under_its_content_length(client: httpx.Client) -> None:
    configure(client, {"route": "file", "nth": 1, "fault": "truncated"})
    video = wait_completed(client, create(client).json()["id"])
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message body"):
        client.get(video["output"]["url"])
    r = client.get(video["output"]["url"])
    assert r.status_code == 200 and len(r.content) == video["output"]["size_bytes"]


def test_reset_mid_body_is_a_transport_error(client: httpx.Client) -> None:
    configure(client, {"route": "file", "nth": 1, "fault": "reset_mid_body"})
    video = wait_completed(client, create(client).json()["id"])
    with pytest.raises(TRANSPORT_ERRORS):
        client.get(video["output"]["url"])


def test_slow_headers_trip_a_read_timeout(client: httpx.Client) -> None:
    configure(client, {"route": "list", "nth": 1, "fault": "slow", "delay": 1.0})
    with pytest.raises(httpx.ReadTimeout):
        client.get("/videos", timeout=httpx.Timeout(5, read=0.2))
    assert client.get("/videos").status_code == 200


def test_stalled_body_trips_a_read_timeout_after_the_headers(client: httpx.Client) -> None:
    configure(client, {"route": "file", "nth": 1, "fault": "stall_body", "delay": 1.0})
    video = wait_completed(client, create(client).json()["id"])
    with client.stream("GET", video["output"]["url"], timeout=httpx.Timeout(5, read=0.2)) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            r.read()


def test_output_urls_use_the_host_the_client_called(client: httpx.Client, server: str) -> None:
    video = wait_completed(client, create(client).json()["id"])
    assert video["output"]["url"].startswith(server.removesuffix("/v1") + "/files/")


def test_server_stops_when_the_block_ends() -> None:
    with running_server(SimConfig()) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert httpx.get(url.removesuffix("/v1") + "/_sim/stats").status_code == 200
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_server_in_a_child_process() -> None:
    with running_server(SimConfig(api_key="lmnfl_test", render_time=0), process=True) as url:
        assert httpx.post(f"{url}/videos", json={"model": MODEL, "prompt": "x"}).status_code == 401
        r = httpx.post(f"{url}/videos", json={"model": MODEL, "prompt": "x"}, headers={"Authorization": "Bearer lmnfl_test"})
        assert r.status_code == 202


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_flags_become_knobs(tmp_path: Path) -> None:
    knobs = tmp_path / "knobs.json"
    knobs.write_text(json.dumps({"render_time": 9, "failure_rate": 0.5, "script": [{"fault": "slow", "route": "get", "p": 0.1}]}))
    args = parse(
        "--port", "8765", "--config", str(knobs), "--render-time", "3", "--concurrency", "2", "--rate-limit", "5",
        "--no-idempotency", "--url-ttl", "60", "--seed", "4", "--api-key", "k", "--fault", "create:reset_after:nth=2,5",
        "--omit-output", "--cost-factor", "1.5",
    )
    config = config_from_args(args)
    assert (args.host, args.port) == ("127.0.0.1", 8765)
    assert (config.render_time, config.failure_rate, config.concurrency, config.rate_limit) == (3.0, 0.5, 2, 5.0)
    assert (config.honour_idempotency, config.url_ttl, config.seed, config.api_key) == (False, 60.0, 4, "k")
    assert config.omit_output is True and config.cost_factor == 1.5
    assert config.script == (FaultRule("slow", route="get", p=0.1), FaultRule("reset_after", route="create", nth=(2, 5)))
    assert config_from_args(parse()) == SimConfig()


def test_the_help_of_sim_serve_names_every_knob_and_every_route_the_key_guards() -> None:
    """Each knob is a flag, or named in --config's help as one that goes in the file; --api-key names every
    request that changes the simulator, as the simulator refuses them without the key."""
    import dataclasses

    parser = argparse.ArgumentParser(prog="gridrun sim serve")
    add_arguments(parser)
    flags = {a.dest for a in parser._actions}
    config_help = " ".join(next(a.help for a in parser._actions if a.dest == "config").split())
    for knob in (f.name for f in dataclasses.fields(SimConfig)):
        assert knob in flags or knob in config_help, knob
    key_help = " ".join(next(a.help for a in parser._actions if a.dest == "api_key").split())
    assert "POST and PATCH /_sim/config, POST /_sim/reset, POST /_sim/release" in key_help
    assert config_from_args(parse("--cache-size", "3")).cache_size == 3


def test_a_knobs_file_at_fault_is_named_and_one_with_a_bom_is_read(tmp_path: Path) -> None:
    """A bad value in --config's file names the file (the message alone could be a flag's); a flag that
    replaces it leaves no error; a UTF-8 BOM is taken, as in manifests and capability files."""
    from runner.sim.config import ConfigError

    knobs = tmp_path / "k1.json"
    knobs.write_text(json.dumps({"render_time": "x"}))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(knobs))}: .*render_time must be a number, got 'x'"):
        config_from_args(parse("--config", str(knobs)))
    assert config_from_args(parse("--config", str(knobs), "--render-time", "3")).render_time == 3.0
    knobs.write_bytes(b"\xef\xbb\xbf" + json.dumps({"render_time": 2}).encode())
    assert config_from_args(parse("--config", str(knobs))).render_time == 2.0


@pytest.mark.parametrize("spec", ["create:reset_after", "create:explode:0.1", "create:slow:often"])
def test_bad_fault_flags_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_fault(spec)


def test_access_log_logs_one_line_per_request_with_its_method_path_and_status(tmp_path: Path) -> None:
    """`gridrun sim serve --access-log` writes a line for every request it answers, whatever the answer."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "out.log"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.cli", "sim", "serve", "--host", "127.0.0.1", "--port", "0", "--access-log"],
            stdout=f, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening on (http://\S+/v1)", out.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        url = found.group(1)
        assert httpx.get(f"{url}/balance").status_code == 200
        assert httpx.get(f"{url}/videos/nope").status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    logged = out.read_text()
    assert re.search(r'"GET /v1/balance HTTP/1\.1" 200', logged), logged
    assert re.search(r'"GET /v1/videos/nope HTTP/1\.1" 404', logged), logged


def test_sigterm_ends_the_served_simulator_while_a_stalled_download_is_pending(tmp_path: Path) -> None:
    """`gridrun sim serve` holding a download's body for 600 s (`stall_body`), its client gone: SIGTERM (what
    `timeout`, `docker stop` and a CI cancel send) ends it cleanly, the pending answer cut, not waited out."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "out.log"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.cli", "sim", "serve", "--host", "127.0.0.1", "--port", "0",
             "--render-time", "0", "--jitter", "0", "--fault", "file:stall_body:1.0", "--slow-delay", "600"],
            stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening on (http://\S+/v1)", out.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        with httpx.Client(base_url=found.group(1), timeout=5) as client:
            video = wait_completed(client, create(client).json()["id"])
            with client.stream("GET", video["output"]["url"], timeout=httpx.Timeout(5, read=0.5)) as r:
                assert r.status_code == 200
                with pytest.raises(httpx.ReadTimeout):
                    r.read()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)  # the stall's 600 s are not waited out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    said = out.read_text()
    assert code in (0, 130, 143) and "Traceback" not in said, said
