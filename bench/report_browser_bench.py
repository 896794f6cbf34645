"""The report of a big run in a real browser: how soon the first cards show, how big the page is, and what a
key press, a filter, a swap of the axes and a size change cost, at 2,000 and 10,000 jobs by default.

    .venv/bin/python bench/report_browser_bench.py [--jobs 2000 10000] [--tries 3] [--report PATH ...]

The state is bench/report_bench.py's synthetic one (planned, in flight, failed and done jobs; no video files, so
the figures are of the page alone), or the reports given with --report. Playwright drives /usr/bin/chromium.
Each figure is the time from the action to the next idle frame (a frame drawn, then a task), the median of the
tries; "nodes" is the page's DOM nodes after a garbage collection, "filled" the cards drawn in full.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_bench import build

from runner.report import write_report

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
IDLE = "() => new Promise(r => requestAnimationFrame(() => setTimeout(() => r(performance.now()), 0)))"
TIMED = ("async (a) => { const t0 = performance.now(); (new Function(a))();"
         " await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0))); return performance.now() - t0; }")
CHANGE = "const s = document.getElementById('{id}'); s.value = '{v}'; s.dispatchEvent(new Event('{e}'));"


def measure(browser: Any, url: str) -> dict[str, float]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable")
    try:
        page.goto(url, wait_until="commit", timeout=600_000)
        # a card drawn in full (its panes), the moment the page's script made it
        page.wait_for_function("document.querySelector('#grid .card .panes') !== null", polling="raf", timeout=600_000)
        r: dict[str, float] = {"first_card_ms": page.evaluate("performance.now()")}
        page.wait_for_load_state("load", timeout=600_000)
        r["interactive_ms"] = page.evaluate(IDLE)
        cdp.send("HeapProfiler.collectGarbage")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        r["nodes"] = metrics["Nodes"]
        r["cards"] = page.evaluate("document.querySelectorAll('#grid .card').length")
        r["filled"] = page.evaluate("document.querySelectorAll('#grid .card .panes').length")
        r["style_change_ms"] = page.evaluate(TIMED, "document.body.style.setProperty('--bench', String(Math.random()))")
        page.evaluate("document.querySelector('#grid .card').focus()")
        keys = []
        for key in ["ArrowRight", "ArrowDown", "ArrowRight", "ArrowDown", "ArrowLeft"]:
            t = time.perf_counter()
            page.keyboard.press(key)
            page.evaluate(IDLE)
            keys.append((time.perf_counter() - t) * 1000)
        r["arrow_key_ms"] = statistics.median(keys)
        r["filter_failed_ms"] = page.evaluate(TIMED, CHANGE.format(id="ctl-status", v="failed", e="change"))
        r["filter_all_ms"] = page.evaluate(TIMED, CHANGE.format(id="ctl-status", v="all", e="change"))
        r["swap_ms"] = page.evaluate(TIMED, "document.getElementById('ctl-swap').click()")
        r["size_ms"] = page.evaluate(TIMED, CHANGE.format(id="ctl-size", v="300", e="change"))
        height = page.evaluate("document.documentElement.scrollHeight")
        steps = []
        for k in range(1, 11):
            steps.append(page.evaluate(TIMED, f"window.scrollTo(0, {height * k // 10})"))
        r["scroll_step_ms"] = statistics.median(steps)
        r["filled_after_scroll"] = page.evaluate("document.querySelectorAll('#grid .card .panes').length")
        return r
    finally:
        ctx.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, nargs="*", default=[2000, 10000])
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--report", type=Path, nargs="*", default=[])
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    roots: list[Path] = []
    reports: list[tuple[str, Path]] = [(str(p), p.resolve()) for p in args.report]
    try:
        if not args.report:
            for n in args.jobs:
                root = Path(tempfile.mkdtemp(prefix="gridrun-browser-bench-"))
                roots.append(root)
                store, run_id = build(root, n)
                reports.append((f"{n} jobs", write_report(store, run_id=run_id, posters=False)))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for name, report in reports:
                tries = [measure(browser, report.as_uri()) for _ in range(args.tries)]
                med = {k: round(statistics.median(t[k] for t in tries)) for k in tries[0]}
                print(f"{name} ({report.stat().st_size / 1e6:.1f} MB), median of {args.tries}:")
                for k, v in med.items():
                    print(f"  {k:22} {v:>10,}")
                print("  tries: " + json.dumps([{k: round(v) for k, v in t.items()} for t in tries]), flush=True)
            browser.close()
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
