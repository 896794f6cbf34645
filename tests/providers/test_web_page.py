"""A base URL that answers with a web page (a web site, a login portal) where the API's JSON is asked for: a setup
error, found before anything is paid for where it can be, and never a create sent to it job after job."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main
from runner.options import RunOptions
from runner.providers import get_provider

pytestmark = pytest.mark.usefixtures("key")

PAGE = b"<html><head><title>Welcome to Lumenfall</title></head><body>Generate videos</body></html>"


@contextlib.contextmanager
def page_server(*, balance: bool = False) -> Iterator[tuple[str, list[str]]]:
    """A local server answering every request with 200 and a web page (with `balance`, `GET /v1/balance` with a
    balance, as the API would, and everything else with the page); its base URL and the requests it saw."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            if balance and self.path.startswith("/v1/balance"):
                body, kind = json.dumps({"balance": 100, "currency": "USD"}).encode(), "application/json"
            else:
                body, kind = PAGE, "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def posts(seen: list[str]) -> int:
    return sum(1 for r in seen if r.startswith("POST "))


def test_a_balance_check_answered_with_a_web_page_refuses_the_run_before_any_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with page_server() as (url, seen):
        monkeypatch.setenv("LUMENFALL_BASE_URL", url)
        m = write_manifest(tmp_path, n_seeds=3, provider="lumenfall", sim={})
        code = main(["run", str(m), "--no-report", "--json"])
    out, err = capsys.readouterr()
    assert posts(seen) == 0, seen
    assert code == 1
    end = json.loads(out.strip().splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "refused" and end["exit_code"] == 1
    said = " ".join(end["errors"])
    assert f"{url} answers with a web page, not the API" in said and "LUMENFALL_BASE_URL" in said, said
    assert "https://api.lumenfall.ai/v1" in said and "nothing was sent" in said
    balance = next(json.loads(line) for line in out.splitlines() if '"balance"' in line)
    assert balance["outcome"] == "web_page"
    with pytest.raises(Exception, match="no run"):  # nothing recorded
        api.status(api.load(m)).run.id


def test_the_api_refuses_it_with_an_endpoint_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.errors import EndpointError

    with page_server() as (url, seen):
        m = write_manifest(tmp_path, n_seeds=2, provider="lumenfall", base_url=url, sim={})
        with pytest.raises(EndpointError) as caught:
            api.run(m, provider=get_provider("lumenfall", base_url=url), options=RunOptions(), report=False)
    assert caught.value.base_url == url and posts(seen) == 0


def test_a_create_answered_with_a_web_page_sends_no_further_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The balance answered as the API would, the create with the page: that job is unknown (the page may have
    passed it on), no other create is sent, and the end says to fix the URL before anything else."""
    with page_server(balance=True) as (url, seen):
        m = write_manifest(tmp_path, n_seeds=3, provider="lumenfall", base_url=url, sim={}, run={"concurrency": 1})
        code = main(["run", str(m), "--no-report"])
    err = capsys.readouterr().err
    assert posts(seen) == 1, seen
    assert code == 1
    states = sorted(j.state for j in api.status(api.load(m)).jobs)
    assert states == ["planned"] * 5 + ["unknown"], states
    end = err.strip().splitlines()[-1]
    assert end.startswith(f"stopped: {url} answers creates with a web page, not the API"), end
    assert "set the base URL" in end and "first, then: `gridrun run` sends the 5 jobs not sent" in end, end
