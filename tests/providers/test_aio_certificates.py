"""aiohttp's default TLS contexts get the system's CA certificates only once a request could use them (an https
URL, or a proxy): a run against the local simulator never loads them, and a request that could is never made
with a context that has none. In a program using gridrun as a library they are loaded at import, as aiohttp does.
Each case runs in a fresh interpreter, which imports aiohttp as gridrun does."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = """\
import asyncio, json, socket, ssl, sys
import runner.entry
runner.entry._command = True  # as the `gridrun` command is (`entry`)
from runner.providers import aio
import aiohttp.connector
import httpx
from runner.providers.proxy import Proxies

def loaded():
    return [c.cert_store_stats()["x509_ca"] for c in
            (aiohttp.connector._SSL_CONTEXT_VERIFIED, aiohttp.connector._SSL_CONTEXT_UNVERIFIED)]

with socket.socket() as s:  # a port nothing listens on: each request fails at connect
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]

async def get(url, proxies):
    transport = aio.AiohttpTransport(max_connections=2, ssl_context=ssl.create_default_context, proxies=proxies)
    async with httpx.AsyncClient(transport=transport) as client:
        try:
            await client.get(url.format(port=closed))
        except httpx.TransportError:
            pass

said = {"imported": loaded(), "method_restored": "set_default_verify_paths" not in ssl.SSLContext.__dict__,
        "fresh_context": ssl.create_default_context().cert_store_stats()["x509_ca"]}
asyncio.run(get("http://127.0.0.1:{port}/v1/videos", None))
said["after_http"] = loaded()
url, proxy = sys.argv[1:3]
asyncio.run(get(url, Proxies({"http": proxy.format(port=closed)}) if proxy else None))
said["after"] = loaded()
print(json.dumps(said))
"""


# A program using gridrun as a library, not the command: it may send requests of its own on aiohttp's defaults.
LIBRARY = """\
import json
from runner.providers import aio
import aiohttp.connector
print(json.dumps([c.cert_store_stats()["x509_ca"] for c in
                  (aiohttp.connector._SSL_CONTEXT_VERIFIED, aiohttp.connector._SSL_CONTEXT_UNVERIFIED)]))
"""


def _child(code: str, *args: str) -> object:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def _system_certificates() -> None:
    if not ssl.create_default_context().cert_store_stats()["x509_ca"]:
        pytest.skip("this system has no CA bundle file to load")


@pytest.mark.parametrize(("url", "proxy"), [("https://127.0.0.1:{port}/v1/videos", ""),
                                            ("http://api.gridrun-test.invalid/v1/videos", "http://127.0.0.1:{port}")],
                         ids=["https", "through-a-proxy"])
def test_aiohttp_default_contexts_get_certificates_only_before_a_request_that_may_use_them(url: str, proxy: str) -> None:
    said = _child(CHILD, url, proxy)
    assert isinstance(said, dict)
    assert said["imported"] == [0, 0]  # not loaded at import ...
    assert said["after_http"] == [0, 0]  # ... nor for a plain http request
    assert said["method_restored"] and said["fresh_context"]  # other contexts load theirs as ever
    verified, unverified = said["after"]
    assert verified > 0 and unverified > 0
    library = _child(LIBRARY)
    assert isinstance(library, list) and all(library)  # a library's program has them at import, as ever
