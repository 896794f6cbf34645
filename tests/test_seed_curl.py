"""The seed page's own curl + jq example, run unchanged (but for base URL and key) against `gridrun sim serve`."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from runner.sim.serve import child_server

SEED_PAGE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "pixverse-v5.6-lumenfall.txt"
SEED_BASE_URL = "https://api.lumenfall.ai/v1"
KEY = "lmnfl_seedtest"

# Copied verbatim from the seed page ("Text to Video", steps 1 and 2).
SEED_SCRIPT = """\
# Step 1: Submit video generation request
VIDEO_ID=$(curl -s -X POST \\
  https://api.lumenfall.ai/v1/videos \\
  -H "Authorization: Bearer $LUMENFALL_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{
    "model": "pixverse-v5.6",
    "prompt": "",
    "size": "1024x1024"
  }' | jq -r '.id')
echo "Video ID: $VIDEO_ID"
# Step 2: Poll for completion
while true; do
  RESULT=$(curl -s \\
    https://api.lumenfall.ai/v1/videos/$VIDEO_ID \\
    -H "Authorization: Bearer $LUMENFALL_API_KEY")
  STATUS=$(echo $RESULT | jq -r '.status')
  echo "Status: $STATUS"
  if [ "$STATUS" = "completed" ]; then
    echo $RESULT | jq -r '.output.url'
    break
  elif [ "$STATUS" = "failed" ]; then
    echo $RESULT | jq -r '.error.message'
    break
  fi
  sleep 5
done
"""

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq") and shutil.which("bash")), reason="needs curl, jq and bash"
)


def test_embedded_script_is_the_seed_pages_own() -> None:
    if not SEED_PAGE.exists():
        pytest.skip(f"{SEED_PAGE} is not in this checkout")
    assert SEED_SCRIPT in SEED_PAGE.read_text(encoding="utf-8")


@pytest.fixture
def sim_serve() -> Iterator[str]:
    """`gridrun sim serve` on a free port of 127.0.0.1, instant renders, requiring KEY."""
    cmd = [
        sys.executable, "-c", "import sys; from runner.cli import main; sys.exit(main())",
        "sim", "serve", "--host", "127.0.0.1", "--port", "0", "--render-time", "0", "--api-key", KEY,
    ]
    with child_server(cmd, startup_timeout=20.0) as (url, _pid):
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        yield url


def test_seed_curl_script_reaches_completed_with_its_empty_prompt_and_the_file_plays(sim_serve: str, tmp_path: Path) -> None:
    script = SEED_SCRIPT.replace(SEED_BASE_URL, sim_serve)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LUMENFALL_API_KEY": KEY}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("Video ID: video_")
    assert lines[-2] == "Status: completed"
    url = lines[-1]
    assert url.startswith(sim_serve.removesuffix("/v1") + "/files/")

    video_id = lines[0].removeprefix("Video ID: ")
    info = httpx.get(f"{sim_serve}/videos/{video_id}", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert (info["prompt"], info["size"], info["seconds"]) == ("", "1024x1024", "5")

    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(r.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 320)
        assert container.duration is not None
        assert container.duration / 1e6 == pytest.approx(5.0, abs=0.2)
