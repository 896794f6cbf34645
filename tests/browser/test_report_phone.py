"""The report on a phone (a touch screen, a layout viewport that grows to a page wider than the screen), on
paper, and opened apart from its folder: headless Debian Chromium driven by Playwright."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_report_browser as base
from test_report_browser import opened, report_of

browser = base.browser  # the browser fixture, one Chromium for the module's tests

pytestmark = pytest.mark.browser


def wide_grid(tmp_path: Path, columns: int = 5, rows: int = 6) -> Path:
    """A grid of `columns` × `rows` done jobs: wider than a phone's screen from three columns on."""
    jobs = [{"values": {"color": c, "shot": s}, "state": "done"} for c in range(rows) for s in range(columns)]
    return report_of(tmp_path, jobs, axes=("color", "shot"), seconds=0.5, one_clip=True)


def swipe(page: Any, x0: float, y0: float, dx: float, dy: float, steps: int = 12) -> None:
    """A finger drawn across the screen (touch events, as a phone sends them), then lifted."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]})
    for i in range(1, steps + 1):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove",
                                              "touchPoints": [{"x": x0 + dx * i / steps, "y": y0 + dy * i / steps}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_printed_the_first_page_shows_the_header_not_the_row_heads_backing_boxes(browser: Any, tmp_path: Path) -> None:
    """On paper the heads do not stick: their backing boxes, left without a sticky head to size them, would
    fill the first page with the background, over the run's summary and the first cards."""
    report = report_of(tmp_path)
    with opened(browser, report, width=800, height=1100) as o:
        page = o.page
        page.emulate_media(media="print")
        hits = page.evaluate("""() => ['h1', '.run-summary .run-line', 'dl.money dd', '.card'].map((sel) => {
            const el = document.querySelector(sel), r = el.getBoundingClientRect();
            const at = document.elementFromPoint(r.left + 4, r.top + r.height / 2);
            return [sel, el === at || el.contains(at)]; })""")
        assert all(ok for _, ok in hits), hits
        backs = page.evaluate("Array.from(document.querySelectorAll('.rowh'), (r) => getComputedStyle(r, '::before').display)")
        assert backs and set(backs) == {"none"}, backs
        page.emulate_media(media="screen")
        assert page.evaluate("getComputedStyle(document.querySelector('.rowh'), '::before').display") == "block"
        assert o.errors == []
