"""Screenshot a gridrun report in headless Chromium: every visible video paused on a frame, then a PNG.

    .venv/bin/python bench/screenshot.py REPORT_HTML OUT_PNG [--width 1400] [--height 900] [--at 0.4] [--open KEY] [--full-page] [--scheme light]

Serves the report's folder on 127.0.0.1 (as a shared, unzipped report folder would be opened), so the
videos load by their relative paths. Needs playwright and /usr/bin/chromium (Debian's `chromium`).
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# Pause every video in view on the same moment, so the picture shows frames rather than posters.
FREEZE = """async (at) => {
  const vids = Array.from(document.querySelectorAll('#grid video')).filter((v) => {
    const r = v.getBoundingClientRect();
    return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth;
  });
  const wait = (v, ok, evts) => new Promise((res) => {
    if (ok()) return res();
    const t = setTimeout(res, 8000);
    const f = () => { if (ok()) { clearTimeout(t); res(); } };
    evts.forEach((e) => v.addEventListener(e, f));
  });
  await Promise.all(vids.map((v) => wait(v, () => v.readyState >= 1 || v.error, ['loadedmetadata', 'error'])));
  for (const v of vids) { v.pause(); if (v.duration) v.currentTime = v.duration * at; }
  await Promise.all(vids.map((v) => wait(v, () => (v.readyState >= 2 && !v.seeking) || v.error, ['seeked', 'loadeddata', 'error'])));
  return vids.length;
}"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def screenshot(report: Path, out: Path, *, width: int = 1400, height: int = 900, at: float = 0.4,
               open_key: str | None = None, full_page: bool = False, scheme: str = "dark") -> int:
    """Write `out`, as a reader who prefers the `scheme` colour scheme sees it; returns how many videos were
    frozen in view."""
    from playwright.sync_api import sync_playwright

    report = report.resolve()
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(report.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": width, "height": height}, color_scheme=scheme)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/{report.name}")
            page.wait_for_function("window.gridrun !== undefined")
            page.evaluate("window.gridrun.attachAll()")
            frozen = int(page.evaluate(FREEZE, at))
            if open_key:
                page.locator(f'.card[data-key="{open_key}"]').click()
                page.wait_for_selector("#viewer[open] video")
                page.wait_for_timeout(1200)
                page.evaluate("document.querySelectorAll('#viewer video').forEach((v) => v.pause())")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=full_page)
            browser.close()
            if errors:
                raise RuntimeError("; ".join(errors))
            return frozen
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="report.html")
    ap.add_argument("out", type=Path, help="PNG to write")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--at", type=float, default=0.4, help="where to pause the videos, as a fraction of their length")
    ap.add_argument("--open", dest="open_key", help="also open this job key in the large view")
    ap.add_argument("--full-page", action="store_true", help="the whole page, not only the window")
    ap.add_argument("--scheme", choices=("dark", "light"), default="dark", help="the colour scheme the reader prefers")
    args = ap.parse_args(argv)
    n = screenshot(args.report, args.out, width=args.width, height=args.height, at=args.at, open_key=args.open_key,
                   full_page=args.full_page, scheme=args.scheme)
    print(f"{args.out} ({n} videos in view)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
