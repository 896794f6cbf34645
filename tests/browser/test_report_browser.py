"""The report in a real browser: headless Debian Chromium driven by Playwright, over a local HTTP server."""

from __future__ import annotations

import contextlib
import functools
import re
import statistics
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from demo_state import Clock, build_state, fox_jobs, renamed_run

from runner.report import write_report
from runner.state import Store

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HOSTILE = "<img src=x onerror=alert(1)></script><script>alert(2)</script> {style}"


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the browser drops media connections it no longer needs


@contextmanager
def serve(root: Path) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@dataclass
class Opened:
    page: Any
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextmanager
def opened(browser: Any, report: Path, *, width: int = 1400, height: int = 1000, from_disk: bool = False,
           timezone: str | None = None, before: Callable[[Any], None] | None = None,
           mobile: bool = False, scheme: str = "dark", fragment: str = "") -> Iterator[Opened]:
    """The report in a new page, served over HTTP (without range requests, as `python -m http.server`), or with
    `from_disk` opened as a file, as the path gridrun prints (where a video can be sought before it is loaded);
    `timezone` is the browser's (an IANA name), else the machine's; `before(page)` is called before it loads;
    `mobile`: as a phone shows it (a touch screen, a layout viewport that grows to a page wider than the screen);
    `scheme`: the colour scheme the reader prefers (Playwright's own default is light); `fragment`: the page's
    address ends with it (`x=seed&y=style`, a view as the page keeps it), so that it loads in that view (a reload
    after setting it would cut off the first load's posters, a failed request)."""
    with contextlib.nullcontext(report.parent.as_uri() + "/") if from_disk else serve(report.parent) as base:
        context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme,
                                      **({"timezone_id": timezone} if timezone else {}),
                                      **({"is_mobile": True, "has_touch": True, "device_scale_factor": 2}
                                         if mobile else {}))
        page = context.new_page()
        if before is not None:
            before(page)
        o = Opened(page)
        page.on("console", lambda m: o.errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: o.errors.append(f"page error: {e}"))
        def on_dialog(d: Any) -> None:
            o.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        page.on("request", lambda r: o.requests.append(r.url))
        page.on("requestfailed", lambda r: o.errors.append(f"request failed: {r.url}") if not r.url.endswith(".mp4") else None)
        page.goto(base + report.name + (f"#{fragment}" if fragment else ""))
        page.wait_for_function("window.gridrun !== undefined")
        try:
            yield o
        finally:
            context.close()


def rgba(css: str) -> tuple[float, float, float, float]:
    """A computed colour, "rgb(r, g, b)" or "rgba(r, g, b, a)", as (r, g, b, a)."""
    parts = [float(p) for p in css[css.index("(") + 1:css.index(")")].split(",")]
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else 1.0)


def contrast(fg: tuple[float, ...], bg: tuple[float, ...]) -> float:
    """WCAG's contrast ratio of two opaque colours."""
    def lum(c: tuple[float, ...]) -> float:
        lin = [v / 255 / 12.92 if v / 255 <= 0.03928 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c[:3]]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def texts(page: Any, selector: str) -> list[str]:
    return list(page.eval_on_selector_all(selector, "els => els.map(e => e.textContent)"))


def detail(page: Any, name: str) -> str:
    """The details view's value in its row `name` (the dialog open)."""
    return page.evaluate("(name) => Array.from(document.querySelectorAll('#viewer tbody tr')).find((r) =>"
                         " r.querySelector('th').textContent === name).querySelector('td').textContent", name)


def report_of(tmp_path: Path, jobs: list[dict[str, Any]] | None = None, **kw: Any) -> Path:
    store, run_id = build_state(tmp_path, fox_jobs() if jobs is None else jobs, **kw)
    return write_report(store, run_id=run_id)


def test_demo_report_loads_clean_and_every_finished_video_has_its_duration(browser: Any, tmp_path: Path) -> None:
    states = {("clay", 2): "failed", ("cyberpunk", 3): "expired"}
    report = report_of(tmp_path, fox_jobs(states), seconds=1.0)
    with opened(browser, report) as o:
        page = o.page
        assert len(texts(page, ".card")) == 12
        page.wait_for_function("document.querySelectorAll('#grid video').length === 10")
        assert page.evaluate("gridrun.attachAll()") == 10
        page.wait_for_function("Array.from(document.querySelectorAll('#grid video')).every(v => v.readyState >= 1)", timeout=20_000)
        durations = page.evaluate("Array.from(document.querySelectorAll('#grid video'), v => v.duration)")
        assert len(durations) == 10 and all(abs(d - 1.0) < 0.05 for d in durations), durations
        posters = page.evaluate("Array.from(document.querySelectorAll('#grid video'), v => v.getAttribute('poster'))")
        assert sorted(posters)[:2] == ["anime/1.jpg", "anime/2.jpg"]
        assert not any(u.startswith(("https:", "http://cdn")) or "127.0.0.1" not in u for u in o.requests if not u.startswith("data:"))
        # render times as the page header writes them, minutes and hours included
        page.evaluate("() => { const it = gridrun.data.items; it[0].jobs[0].rs = 119.6; it[1].jobs[0].rs = 3725;"
                      " it[2].jobs[0].rs = 59.96; gridrun.update(false); }")
        shown = texts(page, ".card .rs")
        assert {"2 min 00 s", "1 h 02 min", "1 min 00 s"} <= set(shown), shown
        page.wait_for_timeout(300)
        assert o.errors == [] and o.dialogs == []


def test_switching_x_and_y_changes_the_layout(browser: Any, tmp_path: Path) -> None:
    report = report_of(tmp_path)
    with opened(browser, report) as o:
        page = o.page
        assert texts(page, ".colh .axis-val") == ["1", "2", "3", "4"]
        assert texts(page, ".rowh .axis-val") == ["anime", "clay", "cyberpunk"]
        card = '.card[data-key="style=clay,seed=4"]'
        before = page.locator(card).bounding_box()
        page.select_option("#ctl-x", "style")
        assert texts(page, ".colh .axis-val") == ["anime", "clay", "cyberpunk"]
        assert texts(page, ".rowh .axis-val") == ["1", "2", "3", "4"]
        after = page.locator(card).bounding_box()
        assert after["y"] > before["y"] + 100 and after["x"] < before["x"] - 100
        page.click("#ctl-swap")
        assert texts(page, ".colh .axis-val") == ["1", "2", "3", "4"]
        page.select_option("#ctl-y", "")
        assert texts(page, ".rowh") == [] and texts(page, ".group-head span") == ["style = anime", "style = clay", "style = cyberpunk"]
        assert texts(page, ".group:first-child .flow .cell-label") == ["seed = 1", "seed = 2", "seed = 3", "seed = 4"]
        page.select_option("#ctl-y", "style")
        page.select_option("#ctl-x", "style")  # picking Y's key for X swaps them
        assert texts(page, ".colh .axis-val") == ["anime", "clay", "cyberpunk"]
        page.reload()
        page.wait_for_function("window.gridrun !== undefined")
        assert texts(page, ".colh .axis-val") == ["anime", "clay", "cyberpunk"]  # the view survives a reload
        assert o.errors == []


def test_sync_play_starts_every_video_of_a_row_together(browser: Any, tmp_path: Path) -> None:
    report = report_of(tmp_path, seconds=2.0)
    with opened(browser, report) as o:
        page = o.page
        page.locator(".rowh").nth(1).locator(".play-row").click()
        row = '.cell[data-row="1"] video'
        page.wait_for_function(
            f"(() => {{ const vs = Array.from(document.querySelectorAll('{row}'));"
            " return vs.length === 4 && vs.every(v => !v.paused && v.currentTime > 0.05); })()",
            timeout=20_000,
        )
        times = page.evaluate(f"Array.from(document.querySelectorAll('{row}'), v => v.currentTime)")
        assert max(times) - min(times) < 0.3, times
        assert page.evaluate(f"Array.from(document.querySelectorAll('{row}'), v => v.loop).every(Boolean)")
        others = page.evaluate("Array.from(document.querySelectorAll('.cell:not([data-row=\"1\"]) video'), v => v.paused)")
        assert all(others)
        page.locator(".colh").nth(0).locator(".play-col").click()
        column = '.cell[data-col="0"] video'
        page.wait_for_function(
            f"Array.from(document.querySelectorAll('{column}')).every(v => !v.paused && v.currentTime > 0.05)"
        )
        assert page.evaluate(f"Array.from(document.querySelectorAll('{row}')).filter(v => !v.paused).length") == 1
        page.click("#ctl-stop")
        assert page.evaluate("Array.from(document.querySelectorAll('video')).every(v => v.paused)")
        page.click("#ctl-loop")
        page.click("#ctl-play")
        page.wait_for_function("Array.from(document.querySelectorAll('#grid video')).filter(v => !v.paused).length === 12")
        assert not page.evaluate("Array.from(document.querySelectorAll('#grid video')).some(v => v.loop)")
        assert o.errors == []


def test_hostile_prompt_and_error_render_as_text_and_run_nothing(browser: Any, tmp_path: Path) -> None:
    jobs = fox_jobs({("clay", 2): "failed"}, prompt=HOSTILE)
    for job in jobs:
        if job["state"] == "failed":
            job["error"] = "<img src=x onerror=alert(3)> refused"
    report = report_of(tmp_path, jobs)
    with opened(browser, report) as o:
        page = o.page
        expected = HOSTILE.format(style="anime")
        assert texts(page, ".card .prompt")[0] == expected
        assert texts(page, ".card .err") == ["<img src=x onerror=alert(3)> refused"]
        page.locator(".card").first.click()
        page.wait_for_selector("#viewer[open] .prompt-full")
        assert texts(page, "#viewer .prompt-full") == [expected]
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(300)
        assert page.evaluate("document.scripts.length") == 2
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert not any(u.endswith("/x") for u in o.requests)
        assert o.dialogs == [] and o.errors == []


def test_half_finished_run_shows_pending_cells(browser: Any, tmp_path: Path) -> None:
    states = {("anime", 4): "running", ("clay", 1): "submitted", ("clay", 2): "failed", ("clay", 3): "planned",
              ("clay", 4): "planned", ("cyberpunk", 1): "planned", ("cyberpunk", 2): "unknown",
              ("cyberpunk", 3): "planned", ("cyberpunk", 4): "planned"}
    report = report_of(tmp_path, fox_jobs(states), end_status=None)
    with opened(browser, report) as o:
        page = o.page
        badges = texts(page, ".card .badge")
        assert badges.count("pending") == 5 and badges.count("done") == 3
        assert {"running", "submitted", "failed", "unknown"} <= set(badges)
        pending = page.locator('.card:has(.badge:text-is("pending"))')
        assert pending.count() == 5
        assert texts(page, '.card:has(.badge:text-is("pending")) .ph') == ["pending"] * 5
        assert page.locator('.card:has(.badge:text-is("pending")) video').count() == 0
        assert "5 pending" in " ".join(t.strip() for t in texts(page, ".chip")).replace("  ", " ")
        assert texts(page, ".run-line .badge") == ["running"]
        assert page.locator("#ctl-reload").is_checked()
        page.select_option("#ctl-status", "pending")
        assert len(texts(page, ".card")) == 5
        assert o.errors == []


SPINNERS = """() => Array.from(document.querySelectorAll('.card .thumb .ph'), (ph) => [ph.closest('.card').dataset.key,
  ph.textContent, getComputedStyle(ph, '::before').animationName])"""


# each card's name up to its cost: its key and its status
CARD_STATES = "Array.from(document.querySelectorAll('.card'), (c) => c.getAttribute('aria-label').split(', ')[0])"


@pytest.mark.parametrize("run", ["going on", "crashed", "gone"])
def test_jobs_a_stopped_run_left_in_flight_show_no_spinner(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: str,
) -> None:
    """A job submitted or rendering spins while its run goes on; on the page of a run that crashed, or whose
    process is gone (killed, as `status` tells), nothing works on it: it shows the state the run left it in, still."""
    from runner.records import RunRecord

    states = {("anime", 1): "submitted", ("anime", 2): "running", ("anime", 3): "planned"}
    jobs = [j for j in fox_jobs(states) if j["values"]["style"] == "anime"]
    store, run_id = build_state(tmp_path, jobs, seconds=0.5, one_clip=True,
                                end_status="crashed" if run == "crashed" else None)
    monkeypatch.setattr(RunRecord, "process_gone", lambda self: run == "gone")
    report = write_report(store, run_id=run_id)
    with opened(browser, report) as o:
        page = o.page
        shown = page.evaluate(SPINNERS)
        chips = texts(page, '.counts .chip[data-group="running"]')
        options = texts(page, '#ctl-status option[value="running"]')
        if run == "going on":
            assert shown == [["style=anime,seed=1", "submitted…", "spin"],
                             ["style=anime,seed=2", "running…", "spin"],
                             ["style=anime,seed=3", "pending", "none"]], shown
            assert (chips, options) == (["2 running"], ["running"])
            assert page.evaluate(CARD_STATES)[:2] == ["style=anime,seed=1: submitted", "style=anime,seed=2: running"]
        else:
            assert texts(page, ".run-line .badge") == [run]
            assert shown == [["style=anime,seed=1", "submitted when the run stopped", "none"],
                             ["style=anime,seed=2", "running when the run stopped", "none"],
                             ["style=anime,seed=3", "pending", "none"]], shown
            # the header and the status filter call them what they are: nothing runs them now
            assert (chips, options) == (["2 left in flight"], ["left in flight"])
            # and so do the cards' names, which a screen reader says
            assert page.evaluate(CARD_STATES)[:2] == ["style=anime,seed=1: submitted when the run stopped",
                                                      "style=anime,seed=2: running when the run stopped"]
        assert texts(page, ".card .badge")[:2] == ["submitted", "running"]
        assert o.errors == []


def test_compare_two_runs_side_by_side(browser: Any, tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    b_jobs = fox_jobs()[1:]
    b_jobs[0]["params"] = {"quality": "1080p"}
    b_jobs[0]["cost"] = 400_000
    b_jobs[1]["prompt"] = "a wolf, anime style"
    _, a = build_state(tmp_path, fox_jobs()[:8], store=store, clock=clock)
    _, b = build_state(tmp_path, b_jobs, store=store, clock=clock, hash_salt="b")
    report = write_report(store, compare=(a, b))
    with opened(browser, report) as o:
        page = o.page
        assert page.locator(".card").count() == 12
        assert page.locator(".card .pane").count() == 24
        assert page.locator(".card.only-a").count() == 1 and page.locator(".card.only-b").count() == 4
        changed = page.locator('.card[data-key="style=anime,seed=2"]')
        assert "differs" in changed.get_attribute("class")
        assert texts(page, '.card[data-key="style=anime,seed=2"] .delta') == ["Δ quality", "Δ paid +$0.20"]
        # a prompt that differs is shown as each run has it
        wolf = '.card[data-key="style=anime,seed=3"]'
        assert texts(page, wolf + " .prompt.diff") == ["a red fox running through fresh snow, anime style", "a wolf, anime style"]
        page.check("#ctl-diff")
        assert page.locator(".card").count() == 7
        changed.click()
        page.wait_for_selector("#viewer[open]")
        assert page.locator("#viewer tr.diff th", has_text="quality").count() == 1
        assert page.locator("#viewer tr.diff th", has_text="cost").count() == 1
        assert o.errors == []


def test_compare_shows_a_job_renamed_by_a_new_axis_once_under_both_keys(browser: Any, tmp_path: Path) -> None:
    """An axis of one value added after run A renames each job, not its hash: each card shows the job in both
    runs as "key A → key B", neither "not in run A" nor "only in run B", and nothing differs: run B cached the
    very videos run A paid for, and paid nothing ("Δ paid", the same video)."""
    store, a = build_state(tmp_path, fox_jobs()[:2], one_clip=True)
    b = renamed_run(store, a, "look", "x")
    report = write_report(store, compare=(a, b))
    with opened(browser, report) as o:
        page = o.page
        assert texts(page, ".card .key") == ["style=anime,seed=1 → style=anime,seed=1,look=x",
                                             "style=anime,seed=2 → style=anime,seed=2,look=x"]
        body = page.inner_text("body")
        assert "not in run" not in body and "only in run" not in body
        assert page.locator(".card.only-a, .card.only-b, .card.differs").count() == 0
        assert texts(page, ".card .delta") == ["Δ paid −$0.20 (the same video)"] * 2
        assert texts(page, ".compare-summary .chip")[:3] == ["2 jobs in both runs (2 under new keys)", "0 only in A",
                                                            "0 only in B"]
        page.locator(".card").first.click()
        page.wait_for_selector("#viewer[open]")
        assert texts(page, "#viewer .viewer-head .key") == ["style=anime,seed=1 → style=anime,seed=1,look=x"]
        assert o.errors == []


def test_compare_lays_out_jobs_paired_by_shared_axes_one_card_a_pair_naming_what_differs(
    browser: Any, tmp_path: Path,
) -> None:
    """`light: [dusk]` added after run A and used by the prompt renames every take and changes its hash: each take
    of run A shares a card with run B's of the same style and repeat, in one row, not a row of run A's "(unset)"
    takes above one of run B's; the card says the two are paired by the axes both runs have, and what differs: the
    new axis, none in run A, and the prompt. "differences only" keeps them."""
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    styles = [{"style": "anime"}, {"style": "clay"}]
    a_jobs = takes([{"values": v, "state": "done", "prompt": f"a fox, {v['style']} style"} for v in styles], 3)
    b_jobs = takes([{"values": {**v, "light": "dusk"}, "state": "done", "prompt": f"a fox, {v['style']} style, dusk"}
                    for v in styles], 3)
    for job in b_jobs:
        job["output"] = job["output"].replace("/dusk", "")  # the same output paths: `{{ style }}-{{ repeat }}.mp4`
    _, a = build_state(tmp_path, a_jobs, axes=("style",), store=store, clock=clock, one_clip=True, seconds=0.5)
    _, b = build_state(tmp_path, b_jobs, axes=("style", "light"), store=store, clock=clock, hash_salt="b",
                       one_clip=True, seconds=0.5)
    report = write_report(store, compare=(a, b))
    with opened(browser, report, width=1600) as o:
        page = o.page
        assert texts(page, ".compare-summary .chip")[:4] == ["0 jobs in both runs", "6 paired by shared axes",
                                                            "0 only in A", "0 only in B"]
        assert page.locator(".card").count() == 6 and page.locator(".card .pane").count() == 12
        grid = page.inner_text("#grid")
        assert "(unset)" not in grid and "not in run" not in grid and "only in run" not in grid
        assert page.locator(".thumb.missing").count() == 0
        # the takes of a style lie in one row, each card holding run A's take and run B's
        for style in ("anime", "clay"):
            cards = page.locator(f'.card[data-key^="style={style},light=dusk"]')
            assert cards.count() == 3
            tops = cards.evaluate_all("cs => cs.map(c => Math.round(c.getBoundingClientRect().top))")
            assert len(set(tops)) == 1, tops
        card = '.card[data-key="style=clay,light=dusk#1"]'
        assert texts(page, card + " .key") == ["style=clay#1 → style=clay,light=dusk#1"]
        assert texts(page, card + " .pair-note") == ["paired by the axes both runs have: not the same job"]
        assert texts(page, card + " .kv.diff") == ["light=(none in A) → dusk"]
        assert texts(page, card + " .delta") == ["Δ light, prompt"]
        assert "differs" in (page.get_attribute(card, "class") or "")
        page.check("#ctl-diff")
        assert page.locator(".card").count() == 6
        page.click(card)
        page.wait_for_selector("#viewer[open]")
        light = page.locator("#viewer tr.diff", has_text="light")
        assert light.locator("td").all_inner_texts() == ["(none in run A)", "dusk"]
        assert o.errors == []


def test_compare_names_the_run_that_sent_a_new_take_and_the_run_that_paid_for_it(browser: Any, tmp_path: Path) -> None:
    """Run B's new take was sent by one run and paid in another (it collected what a killed `--force` run sent):
    the card says both, not "rendered in" the run that paid; a take one run sent and paid for says that run."""
    store, a = build_state(tmp_path, fox_jobs()[:2], one_clip=True)
    b = renamed_run(store, a, "look", "x")
    report = write_report(store, compare=(a, b))
    with opened(browser, report) as o:
        page = o.page
        page.evaluate("() => { const [one, two] = gridrun.data.items;"
                      " for (const it of [one, two]) { it.take = true; delete it.jobs[1].cached; it.jobs[1].paid = 7; }"
                      " one.jobs[1].sent = 6; gridrun.update(false); }")
        assert [t for t in texts(page, ".card .delta") if "take" in t] == [
            "Δ new take (sent by run 6, paid in run 7)", "Δ new take (rendered in run 7)"]
        assert o.errors == []


def test_compare_marks_a_changed_outcome_and_never_sets_an_estimate_against_what_was_paid(
    browser: Any, tmp_path: Path,
) -> None:
    """Run A was stopped before it paid anything; run B went on. A job pending in A and failed free in B says
    its status changed and no cost difference; one pending in A and done in B says both; "differences only"
    keeps the cards whose outcome changed, and drops the one done alike in both."""
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    states = {"dog": ("planned", "failed"), "owl": ("submitted", "unknown"), "cat": ("planned", "done"),
              "fox": ("done", "done")}
    runs = [[{"values": {"animal": k}, "state": pair[side], "estimate": 350_000, "cost": 350_000, "failed_cost": 0}
             for k, pair in states.items()] for side in (0, 1)]
    _, a = build_state(tmp_path, runs[0], store=store, clock=clock, axes=("animal",), end_status="crashed",
                       one_clip=True)
    _, b = build_state(tmp_path, runs[1], store=store, clock=clock, axes=("animal",), hash_salt="b", one_clip=True)
    report = write_report(store, compare=(a, b))
    with opened(browser, report) as o:
        page = o.page
        deltas = page.eval_on_selector_all(".card", "cs => Object.fromEntries(cs.map(c => [c.dataset.key,"
                                           " Array.from(c.querySelectorAll('.delta'), d => d.textContent)]))")
        assert deltas == {"animal=dog": ["Δ status pending → failed"],
                          "animal=owl": ["Δ status submitted → unknown"],
                          "animal=cat": ["Δ status pending → done", "Δ paid +$0.35"], "animal=fox": []}, deltas
        assert texts(page, ".chip.differs") == ["3 differ in parameters, status, take or what was paid"]
        page.check("#ctl-diff")
        shown = page.eval_on_selector_all(".card",
                                          "cs => cs.map(c => [c.dataset.key, c.classList.contains('differs')])")
        assert sorted(shown) == [["animal=cat", True], ["animal=dog", True], ["animal=owl", True]], shown
        assert o.errors == []


CARD_LOOK = """(k) => { const s = getComputedStyle(document.querySelector(`.card[data-key="${k}"]`));
  return [s.borderTopColor, s.outlineStyle, s.outlineColor]; }"""


def test_keyboard_focus_and_hover_show_on_cards_that_differ_or_are_in_one_run(browser: Any, tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    a_jobs, b_jobs = fox_jobs()[:3], fox_jobs()[1:4]
    b_jobs[0]["params"] = {"quality": "1080p"}
    _, a = build_state(tmp_path, a_jobs, store=store, clock=clock, one_clip=True)
    _, b = build_state(tmp_path, b_jobs, store=store, clock=clock, hash_salt="b", one_clip=True)
    report = write_report(store, compare=(a, b))
    with opened(browser, report) as o:
        page = o.page
        accent = page.evaluate("getComputedStyle(document.body).getPropertyValue('--accent').trim()")
        assert accent == "#6cb4ff"
        ring = "rgb(108, 180, 255)"
        keys = {"style=anime,seed=1": "only-a", "style=anime,seed=2": "differs", "style=anime,seed=4": "only-b"}
        for key, mark in keys.items():
            assert mark in page.locator(f'.card[data-key="{key}"]').get_attribute("class")
            plain = page.evaluate(CARD_LOOK, key)
            assert plain[0] != ring and plain[1] == "none"
            page.locator(f'.card[data-key="{key}"]').focus()
            assert page.evaluate("document.activeElement.matches(':focus-visible')")
            assert page.evaluate(CARD_LOOK, key) == [ring, "solid", ring], key
            page.evaluate("document.activeElement.blur()")
            page.locator(f'.card[data-key="{key}"] .key').hover()
            assert page.evaluate(CARD_LOOK, key)[0] == ring, key
            page.mouse.move(0, 0)
        assert o.errors == []


def test_click_opens_a_large_view_with_every_parameter(browser: Any, tmp_path: Path) -> None:
    report = report_of(tmp_path)
    with opened(browser, report) as o:
        page = o.page
        page.evaluate("() => { const it = gridrun.data.items.find((i) => i.key === 'style=clay,seed=3');"
                      " it.jobs[0].cached = 1; it.jobs[0].cost = it.jobs[0].rep = 350000; gridrun.update(false); }")
        page.locator('.card[data-key="style=clay,seed=3"]').click()
        page.wait_for_selector("#viewer[open]")
        assert texts(page, "#viewer .viewer-head .key") == ["style=clay,seed=3"]
        heads = texts(page, "#viewer tbody th")
        for name in ("status", "style", "seed", "cost", "render time", "sha256", "prompt", "quality", "duration", "aspect_ratio"):
            assert name in heads
        cost = page.evaluate("Array.from(document.querySelectorAll('#viewer tbody tr'))"
                             ".find((r) => r.querySelector('th').textContent === 'cost').querySelector('td').textContent")
        assert cost == "none in this run (run 1: $0.35 reported)", cost  # a cached job's cost was another run's
        page.wait_for_function("(() => { const v = document.querySelector('#viewer video'); return v && !v.paused; })()")
        page.keyboard.press("ArrowRight")
        page.wait_for_function("document.querySelector('#viewer .viewer-head .key').textContent === 'style=clay,seed=4'")
        page.keyboard.press("Escape")
        page.wait_for_selector("#viewer", state="hidden")
        assert o.errors == []


def test_the_details_view_says_a_job_never_sent_or_refused_was_paid_nothing(browser: Any, tmp_path: Path) -> None:
    """The cost row of a job never sent (planned) or whose create the provider refused (rejected) says nothing
    was paid, not that a figure was not reported, which stays for a job sent and not settled (submitted)."""
    states = {("anime", 1): "planned", ("anime", 2): "rejected", ("anime", 3): "submitted"}
    jobs = [j for j in fox_jobs(states) if j["values"]["style"] == "anime"]
    store, run_id = build_state(tmp_path, jobs, seconds=0.5, one_clip=True)
    report = write_report(store, run_id=run_id)
    cost_row = ("Array.from(document.querySelectorAll('#viewer tbody tr'))"
                ".find((r) => r.querySelector('th').textContent === 'cost').querySelector('td').textContent")
    with opened(browser, report) as o:
        page = o.page
        shown = {}
        for seed in (1, 2, 3, 4):
            page.locator(f'.card[data-key="style=anime,seed={seed}"]').click()
            page.wait_for_selector("#viewer[open]")
            shown[seed] = page.evaluate(cost_row)
            page.keyboard.press("Escape")
            page.wait_for_selector("#viewer", state="hidden")
        assert shown == {1: "not sent: nothing paid", 2: "rejected: nothing paid", 3: "not reported",
                         4: "$0.20 reported"}, shown
        assert o.errors == []


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_the_header_and_the_details_view_tell_times_on_one_clock_naming_its_zone(browser: Any, tmp_path: Path, zone: str) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    def local(seconds: float) -> str:
        d = datetime.fromtimestamp(int(seconds), ZoneInfo(zone))
        off = d.strftime("%z")
        return d.strftime("%Y-%m-%d %H:%M:%S") + f" UTC{off[:3]}:{off[3:]}"

    report = report_of(tmp_path, fox_jobs()[:2], one_clip=True)
    with opened(browser, report, timezone=zone) as o:
        page = o.page
        run = page.evaluate("gridrun.data.runs[0]")
        header = page.evaluate("Array.from(document.querySelectorAll('.run-line time'),"
                               " t => [t.textContent, t.title, t.getAttribute('datetime')])")
        assert [t for t, _, _ in header] == [local(run["started"]), local(run["ended"])], header
        # the title names the zone (as the browser spells it: Asia/Calcutta) and the time in UTC
        assert all(title.split("; ")[0].startswith(zone.split("/")[0] + "/") and title.endswith("; " + iso)
                   for _, title, iso in header), header
        page.locator(".card").first.click()
        page.wait_for_selector("#viewer[open]")
        job = page.evaluate("gridrun.data.items[0].jobs[0]")
        cells = page.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('#viewer tbody tr'),"
                              " r => [r.querySelector('th').textContent, r.querySelector('td') && r.querySelector('td').textContent]))")
        assert [cells["submitted"], cells["completed"], cells["downloaded"]] == [local(job["sub"]), local(job["cmp"]), local(job["dl"])]
        assert o.errors == []


def test_other_keys_become_super_axes_or_filters(browser: Any, tmp_path: Path) -> None:
    jobs = [{"values": {"style": s, "seed": n, "quality": q}, "state": "done", "params": {"quality": q}}
            for s in ("anime", "clay", "cyberpunk") for n in (1, 2) for q in ("540p", "1080p")]
    report = report_of(tmp_path, jobs, axes=("style", "seed", "quality"), seconds=0.5)
    with opened(browser, report) as o:
        page = o.page
        assert texts(page, ".group-head span") == ["quality = 540p", "quality = 1080p"]
        # a heading names its grid alone, its ▶ beside it
        assert page.get_by_role("heading", level=2).all_text_contents() == ["quality = 540p", "quality = 1080p"]
        assert page.get_by_role("button", name="play the grid quality = 540p in sync").count() == 1
        assert texts(page, ".group:first-child .card .kv b") == []  # X and Y are in the headers; quality in the group head
        sel = '.ctl-axis[data-axis="quality"]'
        page.select_option(sel, "=1")
        assert texts(page, ".group-head") == [] and page.locator(".card").count() == 6
        assert "showing 6 of 12" in texts(page, "#ctl-count")[0]
        page.select_option(sel, "stack")
        assert page.locator(".cell:has(.card + .card)").count() == 6
        page.select_option(sel, "group")
        page.locator(".group-head .play-group").nth(1).click()
        page.wait_for_function("Array.from(document.querySelectorAll('.group:nth-child(2) video')).every(v => !v.paused)")
        assert page.evaluate("Array.from(document.querySelectorAll('.group:nth-child(1) video')).every(v => v.paused)")
        assert o.errors == []


def test_a_thousand_cells_stay_responsive_and_load_lazily(browser: Any, tmp_path: Path) -> None:
    jobs = [{"values": {"prompt_id": f"p{i:02d}", "cfg": c, "seed": s}, "state": "done" if (i + c) % 5 else "planned",
             "prompt": f"prompt {i}: a long description of a scene with a fox"} for i in range(25) for c in range(20) for s in (1, 2)]
    report = report_of(tmp_path, jobs, axes=("prompt_id", "cfg", "seed"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1280, height=800) as o:
        page = o.page
        assert page.locator(".card").count() == 1000  # how fast: bench/report_bench.py
        assert page.locator("#ctl-count").text_content() == "1,000 jobs"  # as the header writes counts
        # the cards near the view are filled as the page finds them in view (an observer's callback, a task of its
        # own after the first layout): waited for, then counted
        page.wait_for_function("document.querySelectorAll('#grid video').length > 0")
        page.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
        videos = page.evaluate("document.querySelectorAll('#grid video').length")
        assert 0 < videos < 100  # only cells near the viewport get a <video>
        page.select_option("#ctl-x", "prompt_id")
        page.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
        assert page.locator(".card").count() == 1000
        page.mouse.wheel(0, 4000)
        page.wait_for_function(f"document.querySelectorAll('#grid video').length > {videos // 2}")
        assert o.errors == []


# Every IntersectionObserver's callback held back two frames and a task, as a loaded machine may run it after the
# page was laid out again: the entries of the frames between come together, in the order they were seen.
LATE_OBSERVERS = r"""(() => {
  const IO = window.IntersectionObserver;
  const all = [];
  let waiting = false;
  window.late = { calls: 0, twice: 0, pending: () => waiting };
  const deliver = () => {
    waiting = false;
    for (const o of all) {
      if (!o.held.length) continue;
      const entries = o.held;
      o.held = [];
      late.calls++;
      if (new Set(entries.map((e) => e.target)).size < entries.length) late.twice++;
      o.cb(entries, o.obs);
    }
  };
  window.IntersectionObserver = function (cb, opts) {
    const o = { cb, held: [] };
    o.obs = new IO((entries) => {
      o.held.push(...entries);
      if (!waiting) { waiting = true; requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(deliver))); }
    }, opts);
    all.push(o);
    return o.obs;
  };
})()"""
IN_VIEW_WITHOUT_PLAYER = ("Array.from(document.querySelectorAll('#grid .thumb[data-src]')).filter((t) => {"
                          " const r = t.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight && r.right > 0"
                          " && r.left < innerWidth && !t.querySelector('video'); }).length")


def test_the_cards_in_view_get_their_players_when_the_observers_answer_late(browser: Any, tmp_path: Path) -> None:
    """On a loaded machine an observer's callback may come after the page was laid out twice: first with the grids
    not drawn yet (every card far from the view), then drawn. Each element is where its last entry says: the
    cards in view keep the players made for them, not given back for the first entry, which no later one brings
    back until they leave the view."""
    jobs = [{"values": {"prompt_id": f"p{i:02d}", "cfg": c, "seed": s}, "state": "done",
             "prompt": f"prompt {i}: a fox"} for i in range(10) for c in range(6) for s in (1, 2)]
    report = report_of(tmp_path, jobs, axes=("prompt_id", "cfg", "seed"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1280, height=800, before=lambda p: p.add_init_script(LATE_OBSERVERS)) as o:
        page = o.page
        assert page.locator("#grid > .group").count() == 2
        page.wait_for_function("late.calls > 0 && !late.pending()")
        page.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
        assert page.evaluate("late.twice") > 0  # the case at hand: an element seen twice before its callback ran
        assert page.evaluate("document.querySelectorAll('#grid video').length") > 0
        assert page.evaluate(IN_VIEW_WITHOUT_PLAYER) == 0
        assert o.errors == []


LAYOUTS = "async (js) => { eval(js); await new Promise((r) => requestAnimationFrame(() => setTimeout(r))); }"


def test_a_change_of_view_lays_the_grid_out_a_few_times_not_once_per_card_measured(browser: Any, tmp_path: Path) -> None:
    """Each swap, pick of an axis, filter or size lays out the page (every card of a big grid) a few times,
    however many cards the page measures to size those not yet drawn, and a drag of the size slider a few times
    however many inputs it fires: a layout of 10,000 cards takes seconds."""
    jobs = [{"values": {"prompt_id": f"p{i:02d}", "seed": s}, "state": "planned"} for i in range(30) for s in range(10)]
    report = report_of(tmp_path, jobs, axes=("prompt_id", "seed"))
    with opened(browser, report, width=1280, height=800) as o:
        page = o.page
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")

        def layouts(js: str) -> int:
            def count() -> float:
                return next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "LayoutCount")
            before = count()
            page.evaluate(LAYOUTS, js)
            return int(count() - before)

        change = "(id, v, e) => { const s = document.getElementById(id); s.value = v; s.dispatchEvent(new Event(e)); }"
        done = {
            "swap": layouts("document.getElementById('ctl-swap').click()"),
            "X": layouts(f"({change})('ctl-x', 'seed', 'change')"),
            "status": layouts(f"({change})('ctl-status', 'pending', 'change')"),
            "size": layouts(f"({change})('ctl-size', '300', 'input')"),
            # a drag of the slider: its inputs come faster than a big grid lays out, and it is let go
            "drag": layouts(f"for (let v = 240; v <= 400; v += 20) ({change})('ctl-size', String(v), 'input');"
                            f"({change})('ctl-size', '400', 'change')"),
        }
        assert all(n <= 6 for n in done.values()), done
        assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--cell')") == "400px"
        assert "size=400" in page.evaluate("location.hash")
        assert page.locator("#ctl-count").text_content() == "300 jobs"
        assert o.errors == []


def test_empty_single_and_oddly_typed_runs_render_cleanly(browser: Any, tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    runs = {
        "empty": ([], ()),
        "single": ([{"values": {}, "state": "done", "key": "only"}], ()),
        "odd": ([{"values": {"cfg": {"a": 1, "b": [1, 2]}, "x": None, "y": True}, "state": "done", "key": "k0"},
                 {"values": {"cfg": {"a": 2}, "x": 1.5, "y": False}, "state": "planned", "key": "k1"}], ("cfg", "x", "y")),
    }
    expected = {"empty": 0, "single": 1, "odd": 2}
    for name, (jobs, axes) in runs.items():
        _, run_id = build_state(tmp_path, jobs, store=store, clock=clock, manifest_name=name, axes=axes, seconds=0.5)
        report = write_report(store, run_id=run_id)
        with opened(browser, report) as o:
            assert o.page.locator(".card").count() == expected[name]
            assert texts(o.page, "#ctl-count") == [{"empty": "0 jobs", "single": "1 job", "odd": "2 jobs"}[name]]
            if name == "odd":
                # the three keys vary together: by default cfg alone lays them out; here x runs down, y groups
                o.page.select_option("#ctl-y", "x")
                o.page.select_option('.ctl-axis[data-axis="y"]', "group")
                assert texts(o.page, ".group:first-child .colh .axis-val") == ['{"a": 1, "b": [1, 2]}', '{"a": 2}']
                assert texts(o.page, ".group-head span") == ["y = true", "y = false"]
                assert o.page.locator(".cell.empty").count() == 6  # both grids share rows and columns
            assert o.errors == [] and o.dialogs == []


def test_a_copied_report_folder_plays_offline_from_file_urls(browser: Any, tmp_path: Path) -> None:
    import shutil

    report = report_of(tmp_path / "made")
    shared = tmp_path / "unzipped" / "fox"
    shutil.copytree(report.parent, shared)
    shutil.rmtree(tmp_path / "made")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto((shared / "report.html").as_uri())
        page.wait_for_function("window.gridrun !== undefined")
        assert page.evaluate("gridrun.attachAll()") == 12
        page.wait_for_function("Array.from(document.querySelectorAll('#grid video')).every(v => v.readyState >= 1)", timeout=20_000)
        assert errors == []
    finally:
        page.close()


def test_long_axis_values_are_clamped_and_any_axis_name_works(browser: Any, tmp_path: Path) -> None:
    """A prompt as an axis: its column header stays about a card wide (the whole text in its title); an axis
    named __proto__ is laid out and filtered like any other; a file name with a comma is shown as it is."""
    long = "a fox running through fresh snow at dawn, " * 5
    jobs = [{"values": {"p": p, "k": k, "__proto__": q}, "state": "done", "prompt": p}
            for p in (long, "short, with comma") for k in ("a", "b") for q in ("x", "y")]
    report = report_of(tmp_path, jobs, axes=("p", "k", "__proto__"), one_clip=True)
    with opened(browser, report) as o:
        page = o.page
        widths = page.eval_on_selector_all(".colh .axis-val", "els => els.map(e => e.getBoundingClientRect().width)")
        assert len(widths) == 4 and max(widths) <= 261, widths  # two groups (__proto__) of two columns
        assert page.locator(".colh .axis-val").first.get_attribute("title") == f'"{long}"'  # it ends in a space
        assert page.evaluate("document.documentElement.scrollWidth") < 1400 + 200
        page.select_option('.ctl-axis[data-axis="__proto__"]', "=1")
        page.wait_for_function("document.querySelectorAll('.card').length === 4")
        page.locator('.card[data-key="p=short, with comma,k=b,__proto__=y"]').click()
        page.wait_for_selector("#viewer[open]")
        assert page.locator("#viewer a.mono").text_content() == "short, with comma/b/y.mp4"
        page.keyboard.press("Escape")
        # the long axis as a layout select: its options are the long values, its width a card's
        page.select_option("#ctl-y", "__proto__")
        page.select_option("#ctl-x", "k")
        page.wait_for_selector('.ctl-axis[data-axis="p"]')
        assert page.locator('.ctl-axis[data-axis="p"]').bounding_box()["width"] <= 261
        assert o.errors == []


def scroll_everywhere(page: Any, step_y: int = 700, step_x: int = 1000) -> None:
    """Scroll the whole page, row of screens by row of screens, as someone looking through the grid."""
    height = page.evaluate("document.documentElement.scrollHeight")
    width = page.evaluate("document.documentElement.scrollWidth")
    for y in range(0, height, step_y):
        for x in range(0, width, step_x):
            page.evaluate(f"window.scrollTo({x}, {y})")
            page.wait_for_timeout(30)


ATTACHED = "document.querySelectorAll('video[src]').length"


def test_scrolling_a_thousand_videos_keeps_the_players_bounded_and_the_details_view_plays(browser: Any, tmp_path: Path) -> None:
    """Chromium refuses a page more than ~1,000 media players: a cell scrolled away gives its player back,
    so after a scroll through 1,000 videos the details view still plays and no cell says "video file missing"."""
    jobs = [{"values": {"color": c, "shot": s, "seed": n}, "state": "done"}
            for c in range(10) for s in range(10) for n in range(10)]
    report = report_of(tmp_path, jobs, axes=("color", "shot", "seed"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1280, height=900) as o:
        page = o.page
        cap = page.evaluate("gridrun.maxVideos")
        assert 100 <= cap <= 200
        most = 0
        height = page.evaluate("document.documentElement.scrollHeight")
        width = page.evaluate("document.documentElement.scrollWidth")
        for y in range(0, height, 700):
            for x in range(0, width, 1000):
                page.evaluate(f"window.scrollTo({x}, {y})")
                page.wait_for_timeout(30)
                most = max(most, page.evaluate(ATTACHED))
        page.wait_for_timeout(500)
        assert most <= cap, most
        assert page.evaluate(ATTACHED) <= cap
        assert page.locator(".thumb.broken").count() == 0
        # back at the top, the cells in view have their players again
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_function("document.querySelectorAll('#grid .card:first-child video[src]').length > 0 || "
                               "document.querySelector('#grid .thumb video[src]') !== null")
        page.locator(".card").first.click()
        page.wait_for_function("(() => { const v = document.querySelector('#viewer video');"
                               " return v && !v.paused && v.currentTime > 0.05; })()", timeout=20_000)
        assert page.evaluate("document.querySelector('#viewer video').error") is None
        assert page.locator("#viewer .thumb.broken").count() == 0
        page.keyboard.press("Escape")
        # play all plays what it can, the cells in view first, and says so
        page.evaluate("window.scrollTo(0, 2000)")
        page.click("#ctl-play")
        page.wait_for_function(f"Array.from(document.querySelectorAll('#grid video')).filter(v => !v.paused).length > 10", timeout=20_000)
        playing = page.evaluate("Array.from(document.querySelectorAll('#grid video')).filter(v => !v.paused).length")
        assert playing <= cap and page.evaluate(ATTACHED) <= cap
        assert f"of 1000" in texts(page, "#ctl-note")[0]
        in_view = page.evaluate("Array.from(document.querySelectorAll('#grid .thumb')).filter(t => {"
                                " const r = t.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth; })"
                                ".every(t => { const v = t.querySelector('video'); return v && !v.paused; })")
        assert in_view
        page.click("#ctl-stop")
        assert texts(page, "#ctl-note") == [""]
        assert page.locator(".thumb.broken").count() == 0
        assert not [e for e in o.errors if "WebMediaPlayer" not in e], o.errors


IN_VIEW_VIDEOS = ("Array.from(document.querySelectorAll('#grid .thumb')).filter(t => {"
                  " const r = t.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight && r.right > 0"
                  " && r.left < innerWidth; }).map(t => t.querySelector('video'))")


def test_cells_scrolled_into_view_during_play_all_join_the_others_in_time(browser: Any, tmp_path: Path) -> None:
    """▶ play all on a grid larger than the page's players: the cells scrolled into view later get players and
    play, at the time the first ones are at (not from their start); players stay bounded; ■ stops them all."""
    jobs = [{"values": {"color": c, "shot": s, "seed": n}, "state": "done"}
            for c in range(6) for s in range(10) for n in range(10)]
    report = report_of(tmp_path, jobs, axes=("color", "shot", "seed"), seconds=20.0, one_clip=True)
    with opened(browser, report, width=1280, height=900, from_disk=True) as o:
        page = o.page
        cap = page.evaluate("gridrun.maxVideos")
        page.click("#ctl-play")
        # seconds in (of 20): a video that joined from its start would be as many seconds behind
        page.wait_for_function("gridrun.playClock() !== null && gridrun.playClock() > 8", timeout=30_000)
        assert "the others join as they come into view" in texts(page, "#ctl-note")[0]
        height = page.evaluate("document.documentElement.scrollHeight")
        page.evaluate(f"window.scrollTo(0, {height // 2})")  # far past the players play all gave out
        page.wait_for_function(f"(() => {{ const vs = {IN_VIEW_VIDEOS};"
                               " return vs.length > 0 && vs.every(v => v && !v.paused && v.currentTime > 0); })()",
                               timeout=30_000)
        # each joined video is where the clock of the first ones says: sought ahead by the time its seek takes and
        # started when the clock gets there, within a few hundredths of a second (a video started once its seek
        # was done would be its seek's time behind, 0.2-1.5 s; one that began from its start over 8 s)
        offsets = page.evaluate(f"(() => {{ const c = gridrun.playClock(); return {IN_VIEW_VIDEOS}.map(v => {{"
                                " const d = Math.abs(v.currentTime - c % v.duration);"
                                " return Math.min(d, v.duration - d); }); })()")
        assert offsets and statistics.median(offsets) < 0.15 and max(offsets) < 0.3, sorted(offsets)
        assert page.evaluate(ATTACHED) <= cap
        page.click("#ctl-stop")
        assert page.evaluate("Array.from(document.querySelectorAll('video')).every(v => v.paused)")
        assert page.evaluate("gridrun.playClock()") is None
        # stopped: a cell scrolled into view now gets a player but stays still
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_function(f"{IN_VIEW_VIDEOS}.some(v => v)", timeout=20_000)
        page.wait_for_timeout(500)
        assert page.evaluate(f"{IN_VIEW_VIDEOS}.every(v => !v || v.paused)")
        assert not [e for e in o.errors if "WebMediaPlayer" not in e], o.errors


def test_play_all_does_not_wait_for_the_players_given_back_meanwhile(browser: Any, tmp_path: Path) -> None:
    """▶ play all gives players to the cells nearest the window; those scrolled away before they loaded give
    theirs back at once. The others do not wait for the players given back (a wait that only a timeout ended,
    8 s + 5 s): the page's clock stands still here, so no timeout ends a wait, and the play starts all the same;
    the cells scrolled into view join in."""
    import datetime

    jobs = [{"values": {"color": c, "shot": s, "seed": n}, "state": "done"}
            for c in range(6) for s in range(10) for n in range(10)]
    report = report_of(tmp_path, jobs, axes=("color", "shot", "seed"), seconds=2.0, one_clip=True)
    with opened(browser, report, width=1280, height=900, before=lambda p: p.clock.install(time=datetime.datetime.now())) as o:
        page = o.page
        page.clock.pause_at(datetime.datetime.now() + datetime.timedelta(seconds=5))
        page.evaluate("() => { document.getElementById('ctl-play').click();"
                      " window.scrollTo(0, document.documentElement.scrollHeight / 2); }")
        assert "the others join as they come into view" in texts(page, "#ctl-note")[0]
        page.wait_for_function("gridrun.playClock() !== null", polling=100, timeout=20_000)
        assert page.evaluate("document.querySelector('#grid .card').querySelector('video')") is None  # given back
        page.clock.resume()
        page.wait_for_function(f"(() => {{ const vs = {IN_VIEW_VIDEOS};"
                               " return vs.length > 0 && vs.every(v => v && !v.paused); })()", timeout=30_000)
        assert o.errors == []


def test_a_missing_video_file_marks_its_cell(browser: Any, tmp_path: Path) -> None:
    """Only the file's own failure says "video file missing" (a page out of players is no missing file): in the
    card's name, and on an opaque band over its poster that reads at 4.5:1 or more."""
    report = report_of(tmp_path)
    (report.parent / "anime" / "2.mp4").unlink()
    with opened(browser, report) as o:
        page = o.page
        page.wait_for_selector(".thumb.broken")
        page.wait_for_timeout(300)
        assert page.evaluate("Array.from(document.querySelectorAll('.thumb.broken'), t => t.closest('.card').dataset.key)") == ["style=anime,seed=2"]
        assert page.evaluate("document.querySelectorAll('.thumb.broken video').length") == 0  # its player is given back
        card = page.locator('.card[data-key="style=anime,seed=2"]')
        assert "done, video file missing" in (card.get_attribute("aria-label") or "")
        assert "missing" not in (page.locator('.card[data-key="style=anime,seed=1"]').get_attribute("aria-label") or "")
        band = page.evaluate("""(() => { const s = getComputedStyle(document.querySelector('.thumb.broken'), '::after');
            return [s.content, s.color, s.backgroundColor]; })()""")
        assert band[0] == '"video file missing"'
        fg, bg = (rgba(c) for c in band[1:])
        assert bg[3] == 1 and contrast(fg, bg) >= 4.5, band


def test_a_video_a_later_run_replaced_and_nothing_kept_says_so_in_its_cell_and_details(
    browser: Any, tmp_path: Path
) -> None:
    """An earlier run's done job whose video is gone (`replaced`, no link) says why, not "done (no file)"."""
    report = report_of(tmp_path)
    gone = "its video is no longer kept (replaced or edited since)"
    with opened(browser, report) as o:
        page = o.page
        page.evaluate("() => { const j = gridrun.data.items.find((i) => i.key === 'style=clay,seed=3').jobs[0];"
                      " delete j.src; delete j.poster; j.replaced = true; j.later = true; gridrun.update(false); }")
        card = '.card[data-key="style=clay,seed=3"]'
        assert texts(page, card + " .thumb .ph") == [gone]
        page.locator(card).click()
        page.wait_for_selector("#viewer[open]")
        assert detail(page, "output") == gone
        assert o.errors == []


def test_a_video_this_user_may_not_read_says_so_in_its_cell_and_details_not_missing(
    browser: Any, tmp_path: Path
) -> None:
    """A done job whose video is there but not readable by this user (`unread`: its path, owner and mode) says
    so, and that it is there, paid for; not "video file missing", nor a paid retry."""
    report = report_of(tmp_path)
    why = "clay/seed-3.mp4 (its folder /team/outputs/clay: owner uid 1002, group 2000, mode 2700)"
    said = (f"video not readable here (permission denied): {why}; it is there, paid for: its owner can make it "
            "readable to you")
    with opened(browser, report) as o:
        page = o.page
        page.evaluate("(why) => { const j = gridrun.data.items.find((i) => i.key === 'style=clay,seed=3').jobs[0];"
                      " delete j.src; delete j.poster; j.unread = why; gridrun.update(false); }", why)
        card = '.card[data-key="style=clay,seed=3"]'
        assert texts(page, card + " .thumb .ph") == [said]
        assert "missing" not in (page.locator(card).get_attribute("aria-label") or "")
        page.locator(card).click()
        page.wait_for_selector("#viewer[open]")
        assert detail(page, "output") == said
        assert "retry" not in said and o.errors == []


def test_a_done_job_whose_re_render_failed_says_so_and_why_in_its_cell_and_details(
    browser: Any, tmp_path: Path
) -> None:
    """A `--force` run whose re-render of a done job failed left it done as it was (`rerr`: the error): its cell
    and the details view say the re-render failed, why, and that the earlier video was kept."""
    report = report_of(tmp_path)
    said = "re-render (--force) failed, the earlier video kept: CONTENT_POLICY_VIOLATION: flagged"
    with opened(browser, report) as o:
        page = o.page
        page.evaluate("() => { const j = gridrun.data.items.find((i) => i.key === 'style=clay,seed=3').jobs[0];"
                      " j.rerr = 'CONTENT_POLICY_VIOLATION: flagged'; gridrun.update(false); }")
        card = '.card[data-key="style=clay,seed=3"]'
        assert texts(page, card + " .err") == ["re-render failed: CONTENT_POLICY_VIOLATION: flagged"]
        assert page.locator(card + " .err").get_attribute("title") == said
        assert texts(page, '.card[data-key="style=clay,seed=2"] .err') == []
        page.locator(card).click()
        page.wait_for_selector("#viewer[open]")
        row = detail(page, "re-render")
        assert row == said
        assert o.errors == []


def test_a_done_job_whose_re_render_was_cancelled_says_so_in_its_cell_and_details(
    browser: Any, tmp_path: Path
) -> None:
    """A `--force` run whose re-render of a done job `gridrun cancel` cancelled left it done as it was (`rcan`): its
    cell, what a screen reader says of it and the details view say so in the words of `status`, so that the earlier
    take shown with no new one is explained; the other cells say nothing of it."""
    report = report_of(tmp_path)
    said = "re-render (--force, retry) cancelled at the provider: the earlier video kept, the job done as before"
    with opened(browser, report) as o:
        page = o.page
        page.evaluate("() => { const j = gridrun.data.items.find((i) => i.key === 'style=clay,seed=3').jobs[0];"
                      " j.rcan = true; gridrun.update(false); }")
        card = '.card[data-key="style=clay,seed=3"]'
        assert texts(page, card + " .rerun-cancelled") == [said]
        assert said in (page.locator(card).get_attribute("aria-label") or "")
        assert texts(page, '.card[data-key="style=clay,seed=2"] .rerun-cancelled') == []
        page.locator(card).click()
        page.wait_for_selector("#viewer[open]")
        row = detail(page, "re-render")
        assert row == said
        assert o.errors == []


def test_a_jobs_attempts_are_named_for_what_they_count_not_as_paid_submissions(browser: Any, tmp_path: Path) -> None:
    """A job's attempts count every render of it sent, by every run of every manifest sharing the state, failed
    and free ones too (the export's `attempts`): the card's figure and the details view's row say so, never
    "paid submissions"."""
    report = report_of(tmp_path)
    counts = ("renders of this job sent to the provider so far, by every run of every manifest sharing the state:"
              " failed and free ones included, not only paid ones")
    with opened(browser, report) as o:
        page = o.page
        page.evaluate("() => { gridrun.data.items.find((i) => i.key === 'style=clay,seed=3').jobs[0].att = 3;"
                      " gridrun.update(false); }")
        card = '.card[data-key="style=clay,seed=3"]'
        figure = page.locator(card + " .meta span", has_text="3 attempts")
        assert figure.count() == 1 and figure.get_attribute("title") == counts
        assert "paid submissions" not in page.content()
        page.locator(card).click()
        page.wait_for_selector("#viewer[open]")
        head = page.locator("#viewer tbody th", has_text="attempts")
        assert head.inner_text() == "attempts (every run)" and head.locator("span").get_attribute("title") == counts
        assert o.errors == []


def test_keyboard_opens_the_focused_card_and_keeps_focus_in_the_viewer(browser: Any, tmp_path: Path) -> None:
    report = report_of(tmp_path)
    with opened(browser, report) as o:
        page = o.page
        viewer_key = "document.querySelector('#viewer .viewer-head .key').textContent"
        active_id = "document.activeElement.id"
        first = page.locator(".card").first
        assert first.get_attribute("role") == "button"
        assert first.get_attribute("aria-label") == "style=anime,seed=1: done, $0.20"
        first.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#viewer[open]")
        assert page.evaluate(viewer_key) == "style=anime,seed=1"  # not the one before it
        assert page.evaluate(active_id) == "viewer-close"
        page.keyboard.press("ArrowRight")
        assert page.evaluate(viewer_key) == "style=anime,seed=2"
        assert page.evaluate(active_id) == "viewer-close"
        page.focus("#viewer-next")
        page.keyboard.press("Enter")
        assert page.evaluate(viewer_key) == "style=anime,seed=3"
        assert page.evaluate(active_id) == "viewer-next"  # the same button, ready for the next press
        page.focus("#viewer-prev")
        page.keyboard.press("Space")
        assert page.evaluate(viewer_key) == "style=anime,seed=2"
        assert page.evaluate(active_id) == "viewer-prev"
        page.focus("#viewer video")
        page.keyboard.press("ArrowRight")  # seeks the video, stays on this job
        page.wait_for_timeout(100)
        assert page.evaluate(viewer_key) == "style=anime,seed=2"
        page.keyboard.press("Escape")
        page.wait_for_selector("#viewer", state="hidden")
        page.locator('.card[data-key="style=clay,seed=3"]').focus()
        page.keyboard.press("Space")
        page.wait_for_selector("#viewer[open]")
        page.wait_for_timeout(100)  # the key's release does not press ✕
        assert page.evaluate(viewer_key) == "style=clay,seed=3"
        assert page.evaluate("document.getElementById('viewer').open")
        assert o.errors == []


def test_a_view_opened_before_the_last_close_event_came_keeps_its_job(browser: Any, tmp_path: Path) -> None:
    """The dialog's `close` event is a task queued after the close; a key press is taken ahead of it. A card opened
    by a key in between (Esc, then Space on another card at once, on a busy machine) kept the view open but empty."""
    report = report_of(tmp_path)
    with opened(browser, report) as o:
        page = o.page
        page.locator(".card").first.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#viewer[open]")
        # the close and the next key press in one task: the close event can only come after both
        page.evaluate("""() => {
            document.getElementById('viewer').close();
            const c = document.querySelector('.card[data-key="style=clay,seed=3"]');
            c.focus();
            c.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
        }""")
        page.wait_for_timeout(200)
        assert page.evaluate("document.getElementById('viewer').open")
        assert page.evaluate("document.querySelector('#viewer .viewer-head .key').textContent") == "style=clay,seed=3"
        assert page.evaluate("document.activeElement.id") == "viewer-close"
        page.keyboard.press("Escape")
        page.wait_for_selector("#viewer", state="hidden")
        page.wait_for_timeout(100)
        # the close that did come last: the card last shown has the focus again
        assert page.evaluate("document.activeElement.dataset.key") == "style=clay,seed=3"
        assert o.errors == []


def test_the_axis_controls_keep_focus_as_the_layout_changes(browser: Any, tmp_path: Path) -> None:
    """X, Y and ⇄ swap rebuild the toolbar: the control used keeps focus, so the arrows go on through X's options."""
    jobs = [{"values": {"style": s, "seed": n, "quality": q}, "state": "done", "params": {"quality": q}}
            for s in ("anime", "clay") for n in (1, 2) for q in ("540p", "1080p")]
    report = report_of(tmp_path, jobs, axes=("style", "seed", "quality"), seconds=0.5, one_clip=True)
    with opened(browser, report) as o:
        page = o.page
        state = "[document.activeElement.id, gridrun.ui.x, gridrun.ui.y]"
        x, y = page.evaluate("[gridrun.ui.x, gridrun.ui.y]")
        page.focus("#ctl-swap")
        page.keyboard.press("Enter")
        assert page.evaluate(state) == ["ctl-swap", y, x]
        page.keyboard.press("Enter")
        assert page.evaluate(state) == ["ctl-swap", x, y]
        page.focus("#ctl-x")
        seen = [x]
        for key in ("ArrowDown", "ArrowDown", "ArrowUp"):
            page.keyboard.press(key)
            active, now, _y = page.evaluate(state)
            assert active == "ctl-x"
            seen.append(now)
        assert seen == ["style", "seed", "quality", "seed"], seen  # each press the next option
        page.focus("#ctl-y")
        page.keyboard.press("ArrowUp")
        assert page.evaluate("document.activeElement.id") == "ctl-y"
        assert o.errors == []


def test_the_details_views_buttons_are_named_for_what_they_do(browser: Any, tmp_path: Path) -> None:
    """A screen reader names ←, → and ✕ by what they do, not by their glyphs, and they do it."""
    report = report_of(tmp_path, fox_jobs()[:3], seconds=0.5, one_clip=True)
    with opened(browser, report) as o:
        page = o.page
        page.locator(".card").first.click()
        page.get_by_role("dialog", name="style=anime,seed=1").wait_for()  # named by its job's key
        viewer = page.locator("#viewer")
        tree = page.locator("#viewer .viewer-head").aria_snapshot()
        assert all(f'button "{name}"' in tree for name in ("previous job", "next job", "close the details")), tree
        assert not any(f'button "{glyph}"' in tree for glyph in "←→✕"), tree
        key = "document.querySelector('#viewer .viewer-head .key').textContent"
        viewer.get_by_role("button", name="next job").click()
        assert page.evaluate(key) == "style=anime,seed=2"
        viewer.get_by_role("button", name="previous job").click()
        assert page.evaluate(key) == "style=anime,seed=1"
        viewer.get_by_role("button", name="close the details").click()
        page.wait_for_selector("#viewer", state="hidden")
        assert o.errors == []


def test_closing_the_details_view_returns_to_the_card_last_shown(browser: Any, tmp_path: Path) -> None:
    """After stepping with the arrows, Esc leaves focus on the card being viewed, scrolled into view (clear of
    the sticky toolbar and column heads), not on the card the view was opened from."""
    jobs = [{"values": {"color": c, "shot": s}, "state": "done"} for c in range(8) for s in range(12)]
    report = report_of(tmp_path, jobs, axes=("color", "shot"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1400, height=800) as o:
        page = o.page
        page.locator(".card").first.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#viewer[open]")
        for _ in range(80):
            page.keyboard.press("ArrowRight")
        shown = page.evaluate("document.querySelector('#viewer .viewer-head .key').textContent")
        assert shown == page.evaluate("document.querySelectorAll('.card')[80].dataset.key")
        page.keyboard.press("Escape")
        page.wait_for_function(f"document.activeElement.dataset.key === {shown!r}", timeout=5000)
        assert page.evaluate("scrollY") > 400
        assert page.evaluate("document.activeElement.matches(':focus-visible')")
        heads = "Math.max(...Array.from(document.querySelectorAll('.colh'), h => h.getBoundingClientRect().bottom))"
        box = page.locator(f'.card[data-key="{shown}"]').bounding_box()
        assert box["y"] >= page.evaluate(heads) and box["y"] + box["height"] <= 800, box
        # stepping back to a card above the view: it comes out below the sticky heads
        page.keyboard.press("Enter")
        page.wait_for_selector("#viewer[open]")
        for _ in range(60):
            page.keyboard.press("ArrowLeft")
        shown = page.evaluate("document.querySelectorAll('.card')[20].dataset.key")
        page.keyboard.press("Escape")
        page.wait_for_function(f"document.activeElement.dataset.key === {shown!r}", timeout=5000)
        box = page.locator(f'.card[data-key="{shown}"]').bounding_box()
        assert box["y"] >= page.evaluate(heads) and box["y"] + box["height"] <= 800, box
        assert o.errors == []


# how far the details view keeps inside the screen (the visual viewport) at its left, right, top and bottom
VIEWER_MARGINS = """() => { const r = document.getElementById('viewer').getBoundingClientRect(), v = visualViewport;
  return [r.left - v.offsetLeft, v.offsetLeft + v.width - r.right,
          r.top - v.offsetTop, v.offsetTop + v.height - r.bottom]; }"""


def test_the_details_view_keeps_to_a_phones_screen_beside_a_grid_wider_than_it(browser: Any, tmp_path: Path) -> None:
    """On a phone a grid wider than the screen scrolls in its own box, the page as wide as the screen: the
    details view opens within what the screen shows, from a card at the left or one scrolled to at the right,
    and stays there as it steps; in a desktop window the stylesheet places it, centred, as ever."""
    jobs = [{"values": {"color": c, "shot": s}, "state": "done"} for c in range(3) for s in range(8)]
    report = report_of(tmp_path, jobs, axes=("color", "shot"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=375, height=740, mobile=True) as o:
        page = o.page
        assert page.evaluate("innerWidth") == 375  # the layout viewport is the screen's
        assert page.evaluate("document.getElementById('grid').scrollWidth") > 375 + 300
        panned = []
        for key in ("color=0,shot=0", "color=1,shot=7"):
            page.locator(f'.card[data-key="{key}"]').focus()
            page.keyboard.press("Enter")
            page.wait_for_selector("#viewer[open]")
            panned.append(page.evaluate("[visualViewport.offsetLeft, document.getElementById('grid').scrollLeft]"))
            margins = page.evaluate(VIEWER_MARGINS)
            assert min(margins) >= 0 and max(margins[:2]) <= 16, (key, margins, panned)
            page.keyboard.press("ArrowRight")
            margins = page.evaluate(VIEWER_MARGINS)
            assert min(margins) >= 0, (key, margins)
            page.keyboard.press("Escape")
            page.wait_for_selector("#viewer", state="hidden")
        # the grid showed its left, then the card at its right; the screen did not pan
        assert panned[0][1] < 20 and panned[1][1] > 100 and panned[0][0] == panned[1][0] == 0, panned
        assert o.errors == []
    with opened(browser, report, width=1400, height=900) as o:
        page = o.page
        page.locator(".card").first.click()
        page.wait_for_selector("#viewer[open]")
        assert page.evaluate("document.getElementById('viewer').style.cssText") == ""
        left, right, top, bottom = page.evaluate(VIEWER_MARGINS)
        assert min(left, right, top, bottom) > 0 and abs(left - right) <= 1, (left, right)
        assert o.errors == []


ROW_TOPS = "Array.from(document.querySelectorAll('.rowh'), r => Math.round(r.getBoundingClientRect().top + scrollY))"


def test_rows_are_as_tall_as_their_cards_before_the_cards_are_drawn(browser: Any, tmp_path: Path) -> None:
    """On a phone most cards are off screen, not yet drawn: they are laid out as tall as drawn ones, so rows do
    not leave gaps, and nothing moves when the user scrolls across and back."""
    jobs = [{"values": {"color": c, "shot": s}, "state": "done"} for c in range(10) for s in range(10)]
    report = report_of(tmp_path, jobs, axes=("color", "shot"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=390, height=800) as o:
        page = o.page
        page.wait_for_timeout(200)
        tops = page.evaluate(ROW_TOPS)
        card = page.evaluate("document.querySelector('.card').getBoundingClientRect().height")
        pitches = [b - a for a, b in zip(tops, tops[1:])]
        assert all(abs(p - (card + 8)) <= 3 for p in pitches[:4]), (pitches, card)
        page.evaluate("window.scrollTo(document.documentElement.scrollWidth, 0)")
        page.wait_for_timeout(300)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(300)
        assert page.evaluate(ROW_TOPS)[:5] == tops[:5]
        assert o.errors == []


FIRST_IN_VIEW = """(() => { const top = Math.max(0, document.getElementById('toolbar').getBoundingClientRect().bottom);
  for (const c of document.querySelectorAll('.card')) { const r = c.getBoundingClientRect();
    if (r.bottom > top && r.top < innerHeight && r.right > 0 && r.left < innerWidth) return [c.dataset.key, Math.round(r.top)]; }
  return null; })()"""


@pytest.mark.parametrize("ended", [False, True], ids=["running", "ended"])
def test_the_live_reload_keeps_the_card_the_user_was_looking_at(browser: Any, tmp_path: Path, ended: bool) -> None:
    """The live page reloads every 20 s while the run goes on; meanwhile cards above the user's place may have
    grown (failed jobs get their error): the page comes back to the same card at the same height. So does the
    last reload, to the page of the run that has ended (no longer live)."""
    import os
    import shutil

    jobs = [{"values": {"color": c, "shot": s}, "state": "planned"} for c in range(6) for s in range(40)]
    report = report_of(tmp_path / "a", jobs, axes=("color", "shot"), end_status=None)
    later = [dict(j, state="failed", error="content moderation: " + "rejected by the provider " * 6)
             if j["values"]["shot"] < 12 else j for j in jobs]
    newer = report_of(tmp_path / "b", later, axes=("color", "shot"), end_status="interrupted" if ended else None)
    with opened(browser, report, width=1280, height=800) as o:
        page = o.page
        page.mouse.wheel(0, 4000)
        page.wait_for_function("scrollY >= 3000")
        page.wait_for_timeout(200)
        key, top = page.evaluate(FIRST_IN_VIEW)
        shutil.copyfile(newer, report)
        later_mtime = report.stat().st_mtime + 10  # not "304 not modified" within the same second
        os.utime(report, (later_mtime, later_mtime))
        with page.expect_navigation():
            page.evaluate("gridrun.reload()")  # what the page does every 20 s while the run goes on
        page.wait_for_function("window.gridrun !== undefined")
        page.wait_for_timeout(300)
        assert page.locator('.card[aria-label*="content moderation"]').count() == 6 * 12  # the new page
        assert page.evaluate("gridrun.data.live") is not ended
        card = page.locator(f'.card[data-key="{key}"]').bounding_box()
        assert abs(card["y"] - top) <= 2, (key, top, card)
        assert page.evaluate("[history.scrollRestoration, sessionStorage.getItem('gridrun.place:' + location.pathname)]") \
            == ["auto", None]
        assert o.errors == []


def test_the_live_reload_over_http_brings_a_page_written_again_within_the_same_second(
        browser: Any, tmp_path: Path) -> None:
    """Served by `python -m http.server`, which dates a file to the second and answers "304 not modified" to a
    reload when the file's second is the one it last served: a live page the run wrote again within that second
    (its last snapshot, say, right after the one before) still reloads into the new page, not the old one."""
    import os
    import shutil

    states = {("anime", 1): "running"}
    report = report_of(tmp_path / "a", fox_jobs(states), end_status=None)
    done = report_of(tmp_path / "b", fox_jobs({("anime", 1): "failed"}))
    with opened(browser, report) as o:
        page = o.page
        assert page.evaluate("gridrun.data.live") is True
        stamp = report.stat()
        shutil.copyfile(done, report)
        os.utime(report, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the same second as the page served
        with page.expect_navigation():
            page.evaluate("gridrun.reload()")
        page.wait_for_function("window.gridrun !== undefined")
        assert page.evaluate("gridrun.data.live") is False
        assert page.locator(".card .err").count() == 1
        assert o.errors == []


def test_the_live_reload_under_a_status_filter_keeps_the_nearest_card_that_stays(browser: Any, tmp_path: Path) -> None:
    """With the status filter on "pending", the card the user was looking at is sent meanwhile and leaves the
    reloaded page, as do the first rows: the nearest card after it that is still shown comes back to where it
    was, sideways too."""
    import os
    import shutil

    jobs = [{"values": {"color": c, "shot": s}, "state": "planned"} for c in range(6) for s in range(40)]
    report = report_of(tmp_path / "a", jobs, axes=("color", "shot"), end_status=None)
    with opened(browser, report, width=1280, height=800) as o:
        page = o.page
        page.select_option("#ctl-x", "color")
        page.select_option("#ctl-y", "shot")
        page.select_option("#ctl-status", "pending")
        page.mouse.wheel(0, 4000)
        page.wait_for_function("scrollY >= 3000")
        page.wait_for_timeout(200)
        key, _ = page.evaluate(FIRST_IN_VIEW)
        in_view = page.evaluate("""k => { const cs = [...document.querySelectorAll('.card')];
            return cs.slice(cs.findIndex(c => c.dataset.key === k)).slice(0, 3).map(c => {
              const r = c.getBoundingClientRect(); return [c.dataset.key, r.top, r.left]; }); }""", key)
        gone = {in_view[0][0], in_view[1][0]}  # sent meanwhile: no longer pending
        # and so are the first rows, whose place the page no longer gives them: what is above moved
        later = [dict(j, state="submitted") if j["values"]["shot"] < 12 or
                 ",".join(f"{k}={v}" for k, v in j["values"].items()) in gone else j for j in jobs]
        shutil.copyfile(report_of(tmp_path / "b", later, axes=("color", "shot"), end_status=None), report)
        later_mtime = report.stat().st_mtime + 10
        os.utime(report, (later_mtime, later_mtime))
        with page.expect_navigation():
            page.evaluate("gridrun.reload()")
        page.wait_for_function("window.gridrun !== undefined")
        page.wait_for_timeout(300)
        assert all(page.locator(f'.card[data-key="{k}"]').count() == 0 for k in gone)
        kept, top, left = in_view[2]
        box = page.locator(f'.card[data-key="{kept}"]').bounding_box()
        assert abs(box["y"] - top) <= 2 and abs(box["x"] - left) <= 2, (kept, top, left, box)
        assert o.errors == []


def takes(jobs: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Each job `n` times, as `repeat: n` makes them (keys `...#1`, `...#2` for the takes after the first)."""
    out = []
    for job in jobs:
        key = ",".join(f"{k}={v}" for k, v in job["values"].items()) or "take"
        name = "/".join(str(v) for v in job["values"].values()) or "take"
        out += [dict(job, key=key + (f"#{r}" if r else ""), output=f"{name}-{r}") for r in range(n)]
    return out


@pytest.mark.parametrize("mobile", [True, False], ids=["phone", "narrow window"])
def test_a_grid_of_two_columns_fits_a_phones_width(browser: Any, tmp_path: Path, mobile: bool) -> None:
    """At 375 px the automatic cell size leaves room for the row heads (at most 90 px there, however long the
    axes' names) and two columns, so the page does not scroll sideways; a desktop window sizes cells as ever."""
    jobs = [{"values": {"lighting_setup": f"light {n}", "camera_angle": a}, "state": "done"}
            for n in (1, 2) for a in ("low", "high")]
    report = report_of(tmp_path, jobs, axes=("lighting_setup", "camera_angle"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=375, height=740, mobile=mobile) as o:
        page = o.page
        assert page.locator(".colh").count() == 2
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        box = page.locator(".card").nth(1).bounding_box()
        assert box["x"] + box["width"] <= 375 - 16, box
        assert o.errors == []
    with opened(browser, report, width=1400, height=900) as o:
        assert o.page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--cell')") == "420px"


def test_a_grid_of_many_rows_keeps_the_default_cell_size_however_few_its_columns(browser: Any, tmp_path: Path) -> None:
    """A long axis down the page against a short one across (60 shots of 2 takes): the automatic size is not
    the width two columns could take (420 px, three rows a screen) but the default, as the rows' videos would
    not share the window's height at any bigger size."""
    jobs = [{"values": {"shot": f"s{n:03d}", "take": t}, "state": "planned"} for n in range(60) for t in ("a", "b")]
    report = report_of(tmp_path, jobs, axes=("shot", "take"))
    with opened(browser, report, width=1400, height=1000) as o:
        page = o.page
        assert page.locator(".colh").count() == 2 and page.locator(".rowh").count() == 60
        assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--cell')") == "220px"
        assert page.evaluate("document.querySelector('.card').getBoundingClientRect().width") <= 220
        assert page.locator("#ctl-size").input_value() == "220"
        assert o.errors == []


def test_cells_holding_several_takes_are_sized_to_fit_the_window(browser: Any, tmp_path: Path) -> None:
    """The automatic cell size counts the cards one cell holds (the takes of `repeat`, all in one cell)."""
    jobs = takes([{"values": {"thing": t, "place": p}, "state": "done"}
                  for t in ("cat", "dog", "owl", "fox", "bee") for p in ("beach", "forest", "city", "moon")], 2)
    report = report_of(tmp_path, jobs, axes=("thing", "place"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1920, height=900) as o:
        page = o.page
        assert page.locator(".cell:has(.card + .card)").count() == 20
        assert page.evaluate("document.documentElement.scrollWidth") <= 1920
        assert o.errors == []


def test_the_takes_of_a_run_without_axes_lie_in_a_row(browser: Any, tmp_path: Path) -> None:
    """No X, no Y (the flow layout): the takes of one cell lie side by side, as in a grid."""
    jobs = takes([{"values": {}, "state": "done", "prompt": "a kite"}], 7)
    report = report_of(tmp_path, jobs, axes=(), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1280, height=900) as o:
        page = o.page
        assert page.locator(".card").count() == 7
        tops = page.eval_on_selector_all(".card", "cs => cs.map(c => Math.round(c.getBoundingClientRect().top))")
        assert len(set(tops)) == 1, tops
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        assert o.errors == []


RTL = "مرحبا بالعالم עברית"


def test_long_and_right_to_left_values_keep_to_their_cards_and_read_in_their_direction(browser: Any, tmp_path: Path) -> None:
    """A long axis value does not widen its column beyond a card (it ends in an ellipsis, its title holds it
    all); right-to-left values, prompts and keys read right to left, each in its own box."""
    values = ["A" * 300, "a long prompt with spaces that goes on " * 7, RTL, "short"]
    jobs = [{"values": {"evil": v, "num": n}, "state": "done", "prompt": f"{v} / {n}", "output": f"v{i}/{n}"}
            for i, v in enumerate(values) for n in (2, 10)]
    report = report_of(tmp_path, jobs, axes=("evil", "num"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1280, height=900) as o:
        page = o.page
        page.select_option("#ctl-x", "evil")
        card = page.evaluate("document.querySelector('.card').getBoundingClientRect().width")
        widths = page.eval_on_selector_all(".colh", "els => els.map(e => e.getBoundingClientRect().width)")
        assert len(widths) == 4 and max(widths) <= card + 0.5, (widths, card)
        assert page.locator(".colh .axis-val").first.get_attribute("title") == "A" * 300
        columns = page.eval_on_selector_all(".card", "els => new Set(els.map(e => Math.round(e.getBoundingClientRect().left))).size")
        assert columns == 4
        grid = page.evaluate("document.querySelector('.grid').getBoundingClientRect().width")
        rowh = page.evaluate("document.querySelector('.rowh').getBoundingClientRect().width")
        assert grid <= rowh + 4 * (card + 8) + 1, (grid, rowh, card)
        direction = "el => getComputedStyle(el).direction"
        rtl_card = page.locator('.card').filter(has_text=RTL).first
        assert rtl_card.locator(".prompt").evaluate(direction) == "rtl"
        assert page.locator(".colh .axis-val").nth(2).evaluate(direction) == "rtl"
        assert page.locator(".colh .axis-val").nth(3).evaluate(direction) == "ltr"
        assert page.locator(".card .prompt").last.evaluate(direction) == "ltr"
        page.select_option("#ctl-x", "num")  # evil all in one cell: its value is a key/value of the card
        page.select_option("#ctl-y", "")
        page.select_option('.ctl-axis[data-axis="evil"]', "stack")
        assert page.locator(".card .kv bdi").filter(has_text=RTL).first.evaluate(direction) == "rtl"
        rtl_card = page.locator('.card').filter(has_text=RTL).first
        rtl_card.click()
        page.wait_for_selector("#viewer[open]")
        assert page.locator("#viewer .prompt-full").evaluate(direction) == "rtl"
        assert page.locator("#viewer td").filter(has_text=RTL).first.evaluate(direction) == "rtl"
        assert o.errors == []


def test_a_doubted_reported_cost_reads_as_the_estimate_counted_beside_the_figure_reported(
    browser: Any, tmp_path: Path,
) -> None:
    """The provider reports each render in micro-dollars: a cell's cost, hovered, and the viewer's cost row say
    that the estimate counted and what was reported, not that the counted figure was reported."""
    from execkit import sim_provider, write_manifest

    from runner import api

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"cost_factor": 1_000_000})
    with ThreadPoolExecutor(1) as pool:  # Playwright keeps an event loop running in this thread
        result = pool.submit(api.run, m, provider=sim_provider(m)).result()
    assert result.exit_code == 0 and result.report is not None
    said = "$0.35 counted (the estimate: $350,000.00 reported, doubted)"
    with opened(browser, result.report) as o:
        page = o.page
        cost = page.locator(".card .cost").first
        assert (cost.text_content(), cost.get_attribute("title")) == ("$0.35", said + "; estimate $0.35")
        page.locator(".card").first.click()
        page.wait_for_selector("#viewer[open]")
        row = page.evaluate("Array.from(document.querySelectorAll('#viewer tbody tr'))"
                            ".find((r) => r.querySelector('th').textContent === 'cost').querySelector('td').textContent")
        assert row == said, row
        assert o.errors == []


def test_a_run_of_cached_jobs_shows_each_cells_cost_and_the_run_that_paid(browser: Any, tmp_path: Path) -> None:
    """Run, then run again with every job cached: each cell of the second run's report shows what its video
    cost and that run 1 paid for it (not a bare "cached"), and says so when hovered; the first run's cells,
    which it paid for itself, show their cost alone."""
    from execkit import sim_provider, write_manifest

    from runner import api

    m = write_manifest(tmp_path, styles=("anime",))
    prov = sim_provider(m)
    with ThreadPoolExecutor(1) as pool:  # Playwright keeps an event loop running in this thread
        first, second = (pool.submit(api.run, m, provider=prov).result() for _ in range(2))
    assert second.stats.cached == 3 and second.report is not None
    costs = {j.key: f"${j.cost_micros / 1e6:.2f}" for j in api.status(m).jobs}
    with opened(browser, second.report) as o:
        page = o.page
        cells = page.eval_on_selector_all(
            ".card", "els => els.map(e => [e.dataset.key, e.querySelector('.cost').textContent, e.querySelector('.cost').title])")
        assert len(cells) == 3
        for key, text, title in cells:
            assert text == f"{costs[key]} · run {first.run_id}", text
            assert title == f"cached: made in run {first.run_id}, {costs[key]} reported; this run paid nothing for it", \
                title
        assert o.errors == []
    store = Store(tmp_path / ".gridrun" / "state.db")
    earlier = write_report(store, run_id=first.run_id, path=second.report.with_name("first.html"))
    with opened(browser, earlier) as o:
        shown = sorted(texts(o.page, ".card .cost"))
        assert shown == sorted(costs.values()), shown
        assert o.errors == []


@pytest.mark.parametrize("seen", ["another snapshot long ago", "this snapshot lately", "this snapshot for long"])
def test_a_live_page_whose_snapshot_stops_moving_stops_reloading_and_says_so(
        browser: Any, tmp_path: Path, seen: str) -> None:
    """A run going on writes its page again at least every `refresh` s (here 30); a page whose snapshot has
    not moved for three times as long (on the tab's clock, across reloads) stops reloading and says the run
    stopped updating it. A snapshot seen lately, or one newer than the one seen long ago, stays until the run
    writes a newer one (its stamp tells), then reloads."""
    import datetime
    import json
    import re

    from runner.report import stamp_path

    store, run_id = build_state(tmp_path, fox_jobs(), end_status=None)
    report = write_report(store, run_id=run_id, refresh=30)
    data = json.loads(re.search(r'id="gridrun-data">(.*?)</script>', report.read_text(), re.DOTALL).group(1))
    assert data["live"] is True and data["refresh"] == 30
    taken, ago = {"another snapshot long ago": (data["runs"][0]["taken"] - 600, 600_000),
                  "this snapshot lately": (data["runs"][0]["taken"], 60_000),
                  "this snapshot for long": (data["runs"][0]["taken"], 80_000)}[seen]

    def before(page: Any) -> None:
        page.clock.install(time=datetime.datetime.now())
        page.add_init_script(f"""if (!sessionStorage.getItem("gridrun.seen:/{report.name}"))
            sessionStorage.setItem("gridrun.seen:/{report.name}", JSON.stringify({{taken: {json.dumps(taken)},
                                                                                  at: Date.now() - {ago}}}));""")

    # from file:// as gridrun prints it, where a page may fetch nothing: the stamp loads as a script
    with opened(browser, report, before=before, from_disk=seen == "this snapshot lately") as o:
        page = o.page
        assert page.locator(".stale-note").count() == 0 and page.locator("#ctl-reload").count() == 1
        page.evaluate("window.sameLoad = true")
        if seen != "this snapshot for long":
            for _ in range(4):  # 20 s on, the stamp still the page's own: no reload
                page.clock.run_for(5_000)
                page.wait_for_function("window.gridrunStamp !== undefined")
            assert page.evaluate("window.sameLoad") is True
            assert page.locator(".stale-note").count() == 0
            stamp = stamp_path(report)
            stamp.write_text(stamp.read_text().replace(str(data["runs"][0]["taken"]), str(data["runs"][0]["taken"] + 9)))
            with page.expect_navigation():  # the run wrote a newer snapshot: the page reloads
                page.clock.run_for(5_000)
            page.wait_for_function("window.gridrun !== undefined")
            assert page.evaluate("window.sameLoad") is None
            assert o.errors == []
            return
        badge = ".run-summary .badge"
        assert page.locator(badge).text_content() == "running"
        page.clock.run_for(21_000)  # 100 s unchanged, past 3 × 30: no reload, and the page says why
        page.wait_for_selector(".stale-note")
        assert page.locator(badge).text_content() == "not updating"
        assert "may be gone" in page.locator(badge).get_attribute("title")
        note = page.locator(".stale-note")
        assert note.count() == 1 and note.get_attribute("role") == "status"
        assert note.text_content() == (f"This page stopped updating: run {run_id} wrote no new snapshot of it for 1 min, "
                                       "where a run going on writes one at least every 30 s. Its process may be gone: "
                                       "`gridrun status` tells.")
        assert page.locator("#ctl-reload").count() == 0
        page.clock.run_for(120_000)
        assert page.evaluate("window.sameLoad") is True
        assert o.errors == []


@pytest.mark.parametrize("later", ["2 days", "30 min"])
def test_a_live_page_whose_snapshot_is_long_past_by_this_clock_stops_at_once_and_says_its_age(
        browser: Any, tmp_path: Path, later: str) -> None:
    """A killed run's page opened days later (its folder shared): its snapshot is older by this computer's clock
    than two clocks could differ, so the page stops updating as it opens and says how old the snapshot is, not
    "running" for minutes and then an age counted from the tab's first look. Within an hour of it (clocks may
    differ that much) the page measures on the tab's own clock as before."""
    import datetime
    import json
    import re

    store, run_id = build_state(tmp_path, fox_jobs({("anime", 1): "running"}), end_status=None)
    report = write_report(store, run_id=run_id, refresh=30)
    taken = json.loads(re.search(r'id="gridrun-data">(.*?)</script>', report.read_text(), re.DOTALL).group(1))["runs"][0]["taken"]
    at = datetime.datetime.fromtimestamp(taken, datetime.UTC) + {"2 days": datetime.timedelta(days=2, minutes=5),
                                                                         "30 min": datetime.timedelta(minutes=30)}[later]
    with opened(browser, report, from_disk=True, before=lambda p: p.clock.install(time=at)) as o:
        page = o.page
        badge = page.locator(".run-summary .badge")
        if later == "30 min":
            assert badge.text_content() == "running" and page.locator(".stale-note").count() == 0
            page.clock.run_for(100_000)  # past 3 × 30 s unchanged on the tab's clock
            page.wait_for_selector(".stale-note")
            assert "wrote no new snapshot of it for 1 min" in page.locator(".stale-note").text_content()
            return
        assert badge.text_content() == "not updating"
        assert page.locator(".stale-note").text_content() == (
            f"This page stopped updating: its snapshot of run {run_id} was taken 2 days ago, by this computer's clock, "
            "where a run going on writes one at least every 30 s. Its process may be gone: `gridrun status` tells.")
        assert page.locator("#ctl-reload").count() == 0
        assert page.locator('.card[data-key="style=anime,seed=1"] .thumb.stopped').count() == 1
        page.evaluate("window.sameLoad = true")
        page.clock.run_for(60_000)
        assert page.evaluate("window.sameLoad") is True and page.locator(".stale-note").count() == 1
        assert o.errors == []


def test_a_live_page_the_ended_run_could_not_write_over_says_at_once_it_is_out_of_date(
        browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run ended and its final page was refused for want of room: the live page open as it went on learns it
    from the snapshot's stamp at its next look, not minutes later, and says the page is out of date, which run
    ended and what writes it again; its jobs in flight no longer show as rendering, and it reloads no more."""
    import datetime
    import errno
    import importlib
    import os

    report_module = importlib.import_module("runner.report")  # `runner.report` is the function
    monkeypatch.chdir(tmp_path)
    store, run_id = build_state(tmp_path, fox_jobs({("anime", 1): "running"}), end_status=None)
    report = write_report(store, run_id=run_id, refresh=30)
    with opened(browser, report, from_disk=True, before=lambda p: p.clock.install(time=datetime.datetime.now())) as o:
        page = o.page
        badge = page.locator(".run-summary .badge")
        assert badge.text_content() == "running" and page.locator(".stale-note").count() == 0
        page.evaluate("window.sameLoad = true")
        store.end_run(run_id, "done")
        real = report_module.atomic_write

        def atomic_write(path: Any, data: Any, **kw: Any) -> None:
            if str(path).endswith(".html"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            real(path, data, **kw)

        monkeypatch.setattr(report_module, "atomic_write", atomic_write)
        with pytest.raises(OSError):
            write_report(store, run_id=run_id)
        page.clock.run_for(5_000)  # the next look at the stamp
        page.wait_for_selector(".stale-note")
        assert page.locator(".stale-note").text_content() == (
            f"This page is out of date: run {run_id} ended; `gridrun report fox-styles.yaml` writes it again once "
            "there is room.")
        assert badge.text_content() == "out of date" and "ended since" in badge.get_attribute("title")
        assert page.locator('.card[data-key="style=anime,seed=1"] .thumb.stopped').count() == 1
        assert page.locator("#ctl-reload").count() == 0
        page.clock.run_for(60_000)
        assert page.evaluate("window.sameLoad") is True and page.locator(".stale-note").count() == 1
        assert o.errors == []


@pytest.mark.parametrize("when", ["at once", "an hour on"])
def test_a_page_told_out_of_date_reloads_into_the_page_gridrun_report_writes(
        browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """A run Ctrl-C'd before its last page: the page open on it says it is out of date and that `gridrun report`
    writes it; once that is done the tab reloads into the page written, at its next look (every 10 s at first),
    not only when the reader reloads it. An hour on it has stopped looking at the stamp; the tab shown again, or
    given the focus, looks at once."""
    import datetime

    from runner.report import mark_out_of_date

    monkeypatch.chdir(tmp_path)
    store, run_id = build_state(tmp_path, fox_jobs({("anime", 1): "running"}), end_status=None)
    report = write_report(store, run_id=run_id, refresh=30)
    with opened(browser, report, from_disk=True, before=lambda p: p.clock.install(time=datetime.datetime.now())) as o:
        page = o.page
        page.evaluate("window.sameLoad = true")
        store.end_run(run_id, "interrupted")
        mark_out_of_date(store, run_id, report)
        page.clock.run_for(5_000)
        page.wait_for_selector(".stale-note")
        assert page.locator(".stale-note").text_content() == (
            f"This page is out of date: run {run_id} ended; `gridrun report fox-styles.yaml` writes it.")
        page.clock.run_for(30_000)  # looking still, at the stamp that says the same
        assert page.evaluate("window.sameLoad") is True
        if when == "an hour on":
            page.clock.run_for(3_600_000)
            page.wait_for_function("!document.querySelector('script[src*=\"stamp.js\"]')")  # its last look done
            page.evaluate("window.gridrunStamp = 'not looked at'")
            page.clock.run_for(600_000)
            assert page.evaluate("window.gridrunStamp") == "not looked at"  # it no longer looks
        write_report(store, run_id=run_id)  # `gridrun report fox-styles.yaml`
        with page.expect_navigation():
            if when == "at once":
                page.clock.run_for(10_000)
            else:
                page.clock.run_for(600_000)
                assert page.evaluate("window.sameLoad") is True
                page.evaluate("window.dispatchEvent(new Event('focus'))")  # the reader comes back to the tab
        page.wait_for_function("window.gridrun !== undefined")
        assert page.evaluate("[window.sameLoad, gridrun.data.live]") == [None, False]
        assert page.locator(".stale-note").count() == 0
        assert page.locator(".run-summary .badge").text_content() == "interrupted"
        assert o.errors == []


@pytest.mark.parametrize("seen", ["no new snapshot for long", "a snapshot 2 days old"])
def test_a_page_its_killed_run_stopped_updating_reloads_into_the_page_of_the_manifests_next_run(
        browser: Any, tmp_path: Path, seen: str) -> None:
    """A killed run's page says it stopped updating (no new snapshot for minutes, or one taken days ago by this
    computer's clock); `gridrun run` of its manifest started again writes its page there: the open tab, looking at
    the stamp still, reloads into it and follows the new run."""
    import datetime
    import json
    import re

    from runner.report import stamp_path

    store, run_id = build_state(tmp_path, fox_jobs({("anime", 1): "running"}), end_status=None)
    report = write_report(store, run_id=run_id, refresh=30)
    data = json.loads(re.search(r'id="gridrun-data">(.*?)</script>', report.read_text(), re.DOTALL).group(1))
    taken = data["runs"][0]["taken"]
    if seen == "a snapshot 2 days old":  # the page's data and stamp say it was taken 2 days before
        old = taken - 2 * 86400
        report.write_text(report.read_text().replace(json.dumps(taken), json.dumps(old)))
        stamp = stamp_path(report)
        stamp.write_text(stamp.read_text().replace(json.dumps(taken), json.dumps(old)))

    def before(page: Any) -> None:
        page.clock.install(time=datetime.datetime.now())
        page.add_init_script(f"""if (!sessionStorage.getItem("gridrun.seen:/{report.name}"))
            sessionStorage.setItem("gridrun.seen:/{report.name}", JSON.stringify({{taken: {json.dumps(taken)},
                                                                                  at: Date.now() - 80000}}));""")

    with opened(browser, report, before=before) as o:
        page = o.page
        page.evaluate("window.sameLoad = true")
        page.clock.run_for(21_000)
        page.wait_for_selector(".stale-note")
        assert page.locator(".run-summary .badge").text_content() == "not updating"
        page.select_option("#ctl-x", "style")  # the view, kept in the page's address, the reload choice with it
        page.clock.run_for(30_000)
        assert page.evaluate("window.sameLoad") is True
        store, again = build_state(tmp_path, fox_jobs({("anime", 1): "running", ("anime", 2): "running"}),
                                   store=store, end_status=None, hash_salt="again")
        assert write_report(store, run_id=again, refresh=30) == report
        with page.expect_navigation():
            page.clock.run_for(10_000)
        page.wait_for_function("window.gridrun !== undefined")
        assert page.evaluate("[window.sameLoad, gridrun.data.live, gridrun.data.runs[0].id]") == [None, True, again]
        assert page.locator(".stale-note").count() == 0
        assert page.locator(".run-summary .badge").text_content() == "running"
        assert page.locator("#ctl-reload").is_checked() and page.input_value("#ctl-x") == "style"
        assert o.errors == []


@pytest.mark.parametrize("why", ["reload turned off", "details open", "details open, the stamp not kept"])
def test_a_live_page_that_does_not_reload_says_it_is_paused_not_that_its_run_may_be_gone(
        browser: Any, tmp_path: Path, why: str) -> None:
    """A live page that does not reload (the user unticked "reload while running", or the details view stays
    open) sees no newer snapshot, however long: it says it is paused, never that the run may be gone, and keeps
    the checkbox. Looking again, a page whose snapshot's stamp is still its own says it stopped updating; without
    the stamp (a folder copied without its .runs/), a page that still gets the same old snapshot as it reloads."""
    import datetime
    import json
    import re

    store, run_id = build_state(tmp_path, fox_jobs(), end_status=None, seconds=0.5, one_clip=True)
    report = write_report(store, run_id=run_id, refresh=30)
    data = json.loads(re.search(r'id="gridrun-data">(.*?)</script>', report.read_text(), re.DOTALL).group(1))
    stamped = why != "details open, the stamp not kept"
    if not stamped:
        from runner.report import stamp_path

        stamp_path(report).unlink()

    def before(page: Any) -> None:
        page.clock.install(time=datetime.datetime.now())
        page.add_init_script(f"""if (!sessionStorage.getItem("gridrun.seen:/{report.name}"))
            sessionStorage.setItem("gridrun.seen:/{report.name}", JSON.stringify({{taken: {json.dumps(data["runs"][0]["taken"])},
                                                                                  at: Date.now() - 80000}}));""")

    with opened(browser, report, before=before) as o:
        page = o.page
        page.evaluate("window.sameLoad = true")
        badge = ".run-summary .badge"
        if why == "reload turned off":
            page.uncheck("#ctl-reload")
        else:
            page.locator('.card[data-key="style=clay,seed=2"]').click()
            page.wait_for_selector("#viewer[open]")
        for _ in range(10):  # 200 s more, past 3 × 30 s many times over
            page.clock.run_for(21_000)
        assert page.evaluate("window.sameLoad") is True
        assert page.locator(badge).text_content() == "running"
        assert page.locator(".stale-note").count() == 0 and page.locator("#ctl-reload").count() == 1
        live = page.locator("#ctl-live")
        assert live.get_attribute("role") == "status"
        if why == "reload turned off":
            assert live.text_content() == "paused: not reloading, this page may be behind the run"
            page.check("#ctl-reload")
        else:
            page.keyboard.press("Escape")
            page.wait_for_function("!document.getElementById('viewer').open")
            page.clock.run_for(100)
            # the dialog's close event, which says it, is a task of its own after the close
            page.wait_for_function("document.getElementById('ctl-live').textContent === ''", timeout=5000)
        assert live.text_content() == ""
        if stamped:  # the next look at the stamp, not the old snapshot's age, tells
            page.clock.run_for(6_000)
            page.wait_for_selector(".stale-note")
            assert page.evaluate("window.sameLoad") is True
        else:  # the next reload tells
            with page.expect_navigation():
                page.clock.run_for(21_000)
            page.wait_for_function("window.gridrun !== undefined")
        assert page.locator(badge).text_content() == "not updating"
        assert page.locator(".stale-note").count() == 1 and page.locator("#ctl-reload").count() == 0
        assert [e for e in o.errors if ".stamp.js" not in e and "404" not in e] == []


@pytest.mark.parametrize("when", ["as it loads", "20 s on"])
def test_a_live_page_that_stops_reloading_shows_the_jobs_left_in_flight_still(
        browser: Any, tmp_path: Path, when: str) -> None:
    """Once the live page decides its run no longer writes it (its process gone, say), the jobs the run left
    submitted or rendering show as the page rebuilt after the run stopped shows them: no spinner, and the state
    the run left them in; the details view opened after says so too. Whether it decides as it loads or later."""
    import datetime
    import json
    import re

    states = {("anime", 1): "submitted", ("anime", 2): "running", ("anime", 3): "planned"}
    jobs = [j for j in fox_jobs(states) if j["values"]["style"] == "anime"]
    store, run_id = build_state(tmp_path, jobs, seconds=0.5, one_clip=True, end_status=None)
    report = write_report(store, run_id=run_id, refresh=30)
    data = json.loads(re.search(r'id="gridrun-data">(.*?)</script>', report.read_text(), re.DOTALL).group(1))
    ago = 600_000 if when == "as it loads" else 80_000

    def before(page: Any) -> None:
        page.clock.install(time=datetime.datetime.now())
        page.add_init_script(f"""sessionStorage.setItem("gridrun.seen:/{report.name}",
            JSON.stringify({{taken: {json.dumps(data["runs"][0]["taken"])}, at: Date.now() - {ago}}}));""")

    with opened(browser, report, before=before) as o:
        page = o.page
        if when == "20 s on":
            assert page.evaluate(SPINNERS)[:2] == [["style=anime,seed=1", "submitted…", "spin"],
                                                   ["style=anime,seed=2", "running…", "spin"]]
            page.clock.run_for(21_000)
            page.wait_for_selector(".stale-note")  # once the snapshot's stamp, the page's own still, has loaded
        assert page.locator(".stale-note").count() == 1
        stopped = [["style=anime,seed=1", "submitted when the run stopped", "none"],
                   ["style=anime,seed=2", "running when the run stopped", "none"],
                   ["style=anime,seed=3", "pending", "none"]]
        assert page.evaluate(SPINNERS) == stopped
        # counted as the page rebuilt after the run counts them, the toolbar's count kept
        assert page.locator("#ctl-count").text_content() == "4 jobs"
        assert page.locator('#ctl-status option[value="running"]').text_content() == "left in flight"
        assert page.locator('.chip[data-group="running"]').text_content() == "2 left in flight"
        assert page.evaluate(CARD_STATES)[:3] == ["style=anime,seed=1: submitted when the run stopped",
                                                  "style=anime,seed=2: running when the run stopped",
                                                  "style=anime,seed=3: pending"]
        page.locator('.card[data-key="style=anime,seed=2"]').click()
        ph = page.locator("#viewer .ph")
        assert ph.text_content() == "running when the run stopped"
        assert ph.evaluate("e => getComputedStyle(e, '::before').animationName") == "none"
        assert o.errors == []


def test_a_job_being_re_rendered_shows_its_earlier_take_until_the_new_one_arrives(browser: Any, tmp_path: Path) -> None:
    """A done job re-rendered (--force) keeps its video at its path until the new one arrives: while the re-render
    is in flight its cell plays that take, and says whose it is, what it cost and that it is being re-rendered;
    once the live page decides its run no longer writes it (its process gone), that the re-render was left in
    flight. A job not re-rendered says nothing of the kind."""
    import datetime
    import json
    import re

    from runner.state import JobState

    jobs = [j for j in fox_jobs() if j["values"]["style"] == "anime"]
    store, run_id = build_state(tmp_path, jobs, seconds=0.5, one_clip=True, end_status=None)
    ids = {j.key: j.id for j in store.snapshot(run_id).jobs}
    for key in ("style=anime,seed=1", "style=anime,seed=2"):
        store.reset(ids[key], "run --force")
        store.begin_submit(run_id, [ids[key]])
        store.transition(ids[key], JobState.SUBMITTED, provider_id="vid_again")
    report = write_report(store, run_id=run_id, refresh=30)
    data = json.loads(re.search(r'id="gridrun-data">(.*?)</script>', report.read_text(), re.DOTALL).group(1))

    def before(page: Any) -> None:
        page.clock.install(time=datetime.datetime.now())
        page.add_init_script(f"""sessionStorage.setItem("gridrun.seen:/{report.name}",
            JSON.stringify({{taken: {json.dumps(data["runs"][0]["taken"])}, at: Date.now() - 80000}}));""")

    notes = """() => Array.from(document.querySelectorAll('.card'), (c) => [c.dataset.key,
      c.querySelector('.thumb').dataset.src || null, (c.querySelector('.rerender') || {}).textContent || null])"""
    with opened(browser, report, before=before) as o:
        page = o.page
        assert texts(page, ".card .badge")[:3] == ["submitted", "submitted", "done"]
        assert page.evaluate(notes)[:3] == [
            ["style=anime,seed=1", "anime/1.mp4", "re-rendering: the earlier take ($0.20) shown until the new one arrives"],
            ["style=anime,seed=2", "anime/2.mp4", "re-rendering: the earlier take ($0.20) shown until the new one arrives"],
            ["style=anime,seed=3", "anime/3.mp4", None]]
        page.clock.run_for(21_000)
        page.wait_for_selector(".stale-note")  # once the snapshot's stamp, the page's own still, has loaded
        left = "re-render left in flight: the earlier take ($0.20) shown, kept until a new one arrives"
        assert [n[2] for n in page.evaluate(notes)[:2]] == [left, left]
        assert o.errors == []


def test_a_zip_opens_on_a_full_grid_of_a_zipped_key_and_the_next(browser: Any, tmp_path: Path) -> None:
    """style × a zip of subject and avoid: subject runs across, style down, avoid on each card; no grid of
    grids with one card a row (the diagonal the two zipped keys make)."""
    zipped = [("a cat", "dogs"), ("a rocket", "clouds"), ("a city", "daylight")]
    jobs = [{"values": {"style": style, "subject": subject, "avoid": avoid}, "state": "done"}
            for style in ("anime", "clay") for subject, avoid in zipped if (style, subject) != ("clay", "a rocket")]
    report = report_of(tmp_path, jobs, axes=("style", "subject", "avoid"), seconds=0.5, one_clip=True)
    with opened(browser, report) as o:
        page = o.page
        assert page.eval_on_selector_all("#ctl-x, #ctl-y", "els => els.map(e => e.value)") == ["subject", "style"]
        assert texts(page, ".colh .axis-val") == ["a cat", "a rocket", "a city"]
        assert texts(page, ".rowh .axis-val") == ["anime", "clay"]
        assert page.locator(".group-head").count() == 0
        assert texts(page, ".cell.empty") == ["no job"]  # the excluded one only
        assert texts(page, '.card[data-key^="style=clay,subject=a city"] .kv') == ["avoid=daylight"]
        assert o.errors == []


def test_the_status_filter_offers_rejected_apart_from_failed(browser: Any, tmp_path: Path) -> None:
    """As `status` counts them: "failed" shows the failed jobs alone, "rejected" the rejected ones, each with its
    badge."""
    states = {("clay", 1): "failed", ("clay", 2): "rejected", ("cyberpunk", 3): "rejected"}
    report = report_of(tmp_path, fox_jobs(states), seconds=0.5, one_clip=True)
    shown = ("Array.from(document.querySelectorAll('.card'),"
             " c => [c.dataset.key, c.querySelector('.badge').textContent])")
    with opened(browser, report) as o:
        page = o.page
        options = page.eval_on_selector_all("#ctl-status option", "os => os.map(o => o.value)")
        assert options == ["all", "done", "failed", "rejected"], options
        page.select_option("#ctl-status", "failed")
        assert page.evaluate(shown) == [["style=clay,seed=1", "failed"]]
        page.select_option("#ctl-status", "rejected")
        assert page.evaluate(shown) == [["style=clay,seed=2", "rejected"], ["style=cyberpunk,seed=3", "rejected"]]
        badge = "(s) => getComputedStyle(document.querySelector(s)).backgroundColor"
        page.select_option("#ctl-status", "all")
        assert page.evaluate(badge, ".card .badge.g-rejected") != page.evaluate(badge, ".card .badge.g-failed")
        assert o.errors == []


def test_a_cell_the_status_filter_empties_reads_filtered_not_no_job(browser: Any, tmp_path: Path) -> None:
    """With status = failed, a cell whose jobs are hidden reads "filtered", in a filled cell; "no job" stays for
    a combination that was never made; rows and columns left with nothing go."""
    jobs = [j for j in fox_jobs({("clay", 2): "failed", ("anime", 3): "failed"})
            if (j["values"]["style"], j["values"]["seed"]) != ("anime", 2)]
    report = report_of(tmp_path, jobs, seconds=0.5, one_clip=True)
    empty = """() => Array.from(document.querySelectorAll('.cell.empty'), (e) => [
        gridrun.data.axes[0].values[e.dataset.row], gridrun.data.axes[1].values[e.dataset.col], e.textContent,
        e.classList.contains('filtered')]).sort()"""
    with opened(browser, report) as o:
        page = o.page
        assert page.evaluate(empty) == [["anime", "2", "no job", False]]
        page.select_option("#ctl-status", "failed")
        assert texts(page, ".rowh .axis-val") == ["anime", "clay"] and texts(page, ".colh .axis-val") == ["2", "3"]  # seeds in numeric order
        assert page.evaluate(empty) == [["anime", "2", "no job", False], ["clay", "3", "filtered", True]]
        # told apart by its box (filled, no dashed border), not by fading its text
        look = "(sel) => { const s = getComputedStyle(document.querySelector(sel)); return [s.borderTopStyle, s.backgroundColor, s.opacity]; }"
        filtered, never = page.evaluate(look, ".cell.filtered"), page.evaluate(look, ".cell.empty:not(.filtered)")
        assert never[0] == "dashed" and filtered[0] != "dashed" and filtered[1] != never[1] and filtered[2] == "1", (filtered, never)
        assert o.errors == []


def test_a_wide_grid_scrolled_sideways_keeps_the_toolbar_in_view_and_its_heads_opaque(
    browser: Any, tmp_path: Path,
) -> None:
    """Scrolled far to the right and down, the toolbar is still at the window's left, as wide as the window;
    the row heads' band at the left and the column heads' band under the toolbar show no card through them. On a
    phone, where the toolbar scrolls up with the page, it still keeps to the left."""
    jobs = [{"values": {"shot": s, "color": c}, "state": "done"} for c in range(8) for s in range(24)]
    report = report_of(tmp_path, jobs, axes=("shot", "color"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1200, height=800) as o:
        page = o.page
        page.select_option("#ctl-x", "shot")
        page.evaluate("window.scrollTo(2000, 500)")
        page.wait_for_function("scrollX >= 2000 && scrollY >= 500")
        page.wait_for_timeout(300)
        bar = page.locator("#toolbar").bounding_box()
        assert (bar["x"], bar["y"], bar["width"]) == (0, 0, 1200), bar
        covered = page.evaluate("""() => {
          const bottom = (sel) => Math.max(...Array.from(document.querySelectorAll(sel),
                                                          (e) => e.getBoundingClientRect().bottom));
          const left = document.querySelector('.rowh').getBoundingClientRect().right, top = bottom('.colh') + 6;
          const seen = [];
          for (let y = 1; y < innerHeight; y += 7) for (let x = 1; x < innerWidth; x += 7) {
            if (x >= left && y >= top) continue;
            const e = document.elementFromPoint(x, y);
            if (e && e.closest('.card')) seen.push([x, y]);
          }
          return {left, top, seen: seen.slice(0, 5)};
        }""")
        assert covered["left"] > 10 and covered["top"] > bar["height"] + 10 and covered["seen"] == [], covered
        page.set_viewport_size({"width": 600, "height": 800})  # a phone's: the toolbar scrolls up with the page
        page.evaluate("window.scrollTo(1500, 0)")
        page.wait_for_function("scrollX >= 1500 && scrollY === 0")
        bar = page.locator("#toolbar").bounding_box()
        assert (bar["x"], bar["width"]) == (0, 600), bar
        assert o.errors == []


def test_the_live_reload_keeps_the_keyboard_focus(browser: Any, tmp_path: Path) -> None:
    """The live page reloads every 20 s while the run goes on: a card with keyboard focus has it again after
    the reload, and so has a toolbar control or a ▶ of the grid, instead of the page's top."""
    jobs = [{"values": {"color": c, "shot": s}, "state": "planned"} for c in range(4) for s in range(12)]
    report = report_of(tmp_path, jobs, axes=("color", "shot"), end_status=None)
    with opened(browser, report, width=1280, height=800) as o:
        page = o.page
        play = ("[document.activeElement.getAttribute('aria-label'),"
                " Array.from(document.querySelectorAll('#grid button')).indexOf(document.activeElement)]")
        for target, focused in [('.card[data-key="color=2,shot=9"]', "document.activeElement.dataset.key"),
                                ("#ctl-status", "document.activeElement.id"),
                                (".play-row >> nth=2", play), (".play-col >> nth=5", play)]:
            page.focus(target)
            before = page.evaluate(focused)
            with page.expect_navigation():
                page.evaluate("gridrun.reload()")  # what the page does every 20 s while the run goes on
            page.wait_for_function("window.gridrun !== undefined")
            assert page.evaluate(focused) == before, target
        assert page.evaluate("sessionStorage.getItem('gridrun.place:' + location.pathname)") is None  # taken back
        assert o.errors == []


def test_the_live_reload_keeps_the_focus_on_a_grid_of_grids_select_and_on_a_header_chip(
        browser: Any, tmp_path: Path) -> None:
    """The select of a grid of grids' key (made by the page, in the toolbar) and a header chip that opens its note
    (the --force run's "to be re-rendered") have the keyboard focus again after the live page's reload, not the
    page's top."""
    jobs = [{"values": {"style": s, "seed": n, "quality": q}, "state": "planned", "params": {"quality": q}}
            for s in ("anime", "clay") for n in (1, 2) for q in ("540p", "1080p")]
    report = report_of(tmp_path / "three", jobs, axes=("style", "seed", "quality"), end_status=None)
    focused = "[document.activeElement.tagName, document.activeElement.id]"
    with opened(browser, report) as o:
        page = o.page
        page.focus('.ctl-axis[data-axis="quality"]')
        assert page.evaluate(focused) == ["SELECT", "ctl-axis-quality"]
        with page.expect_navigation():
            page.evaluate("gridrun.reload()")  # what the page does while the run goes on
        page.wait_for_function("window.gridrun !== undefined")
        assert page.evaluate(focused) == ["SELECT", "ctl-axis-quality"]
        page.keyboard.press("Tab")  # and the next Tab goes on from there, not from the page's top
        assert page.evaluate(focused) == ["SELECT", "ctl-status"]
        assert o.errors == []
    (tmp_path / "force").mkdir()
    m, rid = _a_force_run_begun(tmp_path / "force")
    with Store(m.parent / ".gridrun" / "state.db") as store:
        report = write_report(store, run_id=rid)
    with opened(browser, report) as o:
        page = o.page
        chip = page.locator(".run-summary .chip.rerenders-unsent")
        assert chip.get_attribute("role") == "button"
        chip.focus()
        before = page.evaluate(focused)
        assert before == ["SPAN", f"note-{rid}-rerenders-unsent"]
        with page.expect_navigation():
            page.evaluate("gridrun.reload()")
        page.wait_for_function("window.gridrun !== undefined")
        assert page.evaluate(focused) == before
        assert page.evaluate("document.activeElement.textContent") == "2 to be re-rendered"
        assert o.errors == []


def test_the_live_reload_gives_the_focus_on_a_card_that_left_the_status_filter_to_the_next_one_shown(
        browser: Any, tmp_path: Path) -> None:
    """With the status filter on "running", the focused card's job ends meanwhile and leaves the page that
    comes: the focus goes to the next card shown in the grid's order (here one sent meanwhile, not shown before),
    not to the page's top; with none after it, to the last one before it."""
    from runner.state import JobState

    states = {("anime", 2): "running", ("clay", 1): "running", ("clay", 4): "planned", ("cyberpunk", 4): "running"}
    store, run_id = build_state(tmp_path, fox_jobs(states), end_status=None, one_clip=True, seconds=0.5)
    report = write_report(store, run_id=run_id)
    ids = {j.key: j.id for j in store.snapshot(run_id).jobs}
    with opened(browser, report, fragment="status=running") as o:
        page = o.page
        assert page.locator(".card").count() == 3
        for focus, moved, then in [("style=clay,seed=1", {"style=clay,seed=1": JobState.FAILED,
                                                          "style=anime,seed=2": JobState.FAILED,
                                                          "style=clay,seed=4": JobState.SUBMITTING}, "style=clay,seed=4"),
                                   ("style=cyberpunk,seed=4", {"style=cyberpunk,seed=4": JobState.FAILED}, "style=clay,seed=4")]:
            page.focus(f'.card[data-key="{focus}"]')
            for key, state in moved.items():
                store.transition(ids[key], state, **({"error": "gone"} if state == JobState.FAILED else {}))
            write_report(store, run_id=run_id)
            with page.expect_navigation():
                page.evaluate("gridrun.reload()")
            page.wait_for_function("window.gridrun !== undefined")
            assert page.evaluate("document.activeElement.dataset.key") == then, focus
            assert page.evaluate("document.activeElement.tabIndex") == 0  # the grid's Tab stop
        assert o.errors == []


def test_a_live_page_that_stops_or_ends_keeps_the_focus_on_its_toolbar(browser: Any, tmp_path: Path) -> None:
    """"reload while running" leaves the toolbar when the live page decides its run no longer writes it, and is not
    on the page of the run ended: focus on it goes to the status filter, beside it, not to the page's top."""
    import datetime
    import json

    store, run_id = build_state(tmp_path, fox_jobs({("anime", 1): "running"}), end_status=None)
    report = write_report(store, run_id=run_id, refresh=30)
    data = json.loads(re.search(r'id="gridrun-data">(.*?)</script>', report.read_text(), re.DOTALL).group(1))

    def before(page: Any) -> None:
        page.clock.install(time=datetime.datetime.now())
        page.add_init_script(f"""if (!sessionStorage.getItem("gridrun.seen:/{report.name}"))
            sessionStorage.setItem("gridrun.seen:/{report.name}", JSON.stringify({{
              taken: {json.dumps(data["runs"][0]["taken"])}, at: Date.now() - 80000}}));""")

    focused = "document.activeElement.id"
    with opened(browser, report, before=before) as o:
        page = o.page
        page.focus("#ctl-reload")
        page.clock.run_for(21_000)  # 100 s unchanged, past 3 × 30
        page.wait_for_selector(".stale-note")
        assert page.locator("#ctl-reload").count() == 0
        assert page.evaluate(focused) == "ctl-status"
        assert o.errors == []
    report = write_report(store, run_id=run_id)  # a fresh snapshot: the page stays live
    with opened(browser, report) as o:
        page = o.page
        page.focus("#ctl-reload")
        store.end_run(run_id, "done")
        write_report(store, run_id=run_id)
        with page.expect_navigation():
            page.evaluate("gridrun.reload()")  # the last reload, to the page of the run ended
        page.wait_for_function("window.gridrun !== undefined")
        assert page.evaluate("gridrun.data.live") is False and page.locator("#ctl-reload").count() == 0
        assert page.evaluate(focused) == "ctl-status"
        assert o.errors == []


def test_controls_cards_videos_and_posters_say_what_they_are(browser: Any, tmp_path: Path) -> None:
    """Each ▶ names its row or column; a card's name is its key with its status, cost and error (cut short);
    a grid video is named by its key, a poster's alt says whose first frame it is."""
    error = "content moderation: " + "rejected by the provider " * 6
    jobs = [dict(j, error=error) if j["state"] == "failed" else j for j in fox_jobs({("clay", 2): "failed"})]
    report = report_of(tmp_path, jobs, seconds=0.5)
    with opened(browser, report, width=1400, height=300) as o:
        page = o.page
        assert page.eval_on_selector_all(".play-row", "els => els.map(e => e.getAttribute('aria-label'))") == [
            "play row style = anime in sync", "play row style = clay in sync", "play row style = cyberpunk in sync"]
        assert page.get_by_role("button", name="play column seed = 3 in sync").count() == 1
        assert page.locator('.card[data-key="style=anime,seed=1"]').get_attribute("aria-label") == \
            "style=anime,seed=1: done, $0.20"
        failed = page.locator('.card[data-key="style=clay,seed=2"]').get_attribute("aria-label")
        assert failed == "style=clay,seed=2: failed, cost not reported, " + error[:79] + "…", failed
        page.wait_for_function("document.querySelector('#grid video') && document.querySelector('#grid .thumb img')")
        names = page.eval_on_selector_all("#grid video", "els => els.map(e => e.getAttribute('aria-label'))")
        assert names and all(n.startswith("video style=") for n in names), names
        alts = page.eval_on_selector_all("#grid .thumb img", "els => els.map(e => e.alt)")
        assert alts and all(a.startswith("first frame of style=") for a in alts), alts
        assert o.errors == []


def test_a_printed_grid_wraps_to_the_page_with_every_poster_and_no_controls(browser: Any, tmp_path: Path) -> None:
    """A grid wider than the paper wraps to its width, and every card printed has its poster, also those never
    scrolled near; the toolbar and buttons are not printed."""
    jobs = [{"values": {"look": f"look{i:02d}", "seed": s}, "state": "done"} for i in range(15) for s in range(1, 21)]
    report = report_of(tmp_path, jobs, axes=("look", "seed"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1280, height=800) as o:
        page = o.page
        page.select_option("#ctl-x", "look")
        page.select_option("#ctl-y", "seed")
        assert page.evaluate("document.querySelector('.grid').getBoundingClientRect().width") > 1280
        posters = page.evaluate("document.querySelectorAll('.thumb[data-poster]').length")
        assert posters == 300
        assert page.evaluate("document.querySelectorAll('.thumb img').length") < posters  # only those near the view
        page.set_viewport_size({"width": 760, "height": 1000})
        page.emulate_media(media="print")
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r))))")
        with_poster = ("Array.from(document.querySelectorAll('.thumb[data-poster]'))"
                       ".filter(t => t.querySelector('img[src], video[poster]')).length")
        assert page.evaluate(with_poster) == 300
        right = page.eval_on_selector_all(".card", "els => Math.max(...els.map(e => e.getBoundingClientRect().right))")
        assert right <= 760, right
        shown = "sel => Array.from(document.querySelectorAll(sel)).filter(e => e.getClientRects().length).length"
        assert page.evaluate(shown, ".toolbar") == 0 and page.evaluate(shown, "button") == 0
        assert page.evaluate(shown, ".card") == 300
        assert page.evaluate("getComputedStyle(document.querySelector('.card')).contentVisibility") == "visible"
        assert page.pdf(format="A4")[:4] == b"%PDF"
        assert o.errors == []


def test_a_report_printed_from_the_command_line_has_every_poster_on_paper(tmp_path: Path) -> None:
    """`chromium --print-to-pdf` prints the page as it loads, with no time for images added as printing starts:
    every card's poster is on paper all the same, also those of the cards far from the view."""
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install chromium)")
    jobs = [{"values": {"look": f"look{i:02d}", "seed": s}, "state": "done"} for i in range(6) for s in range(1, 21)]
    report = report_of(tmp_path, jobs, axes=("look", "seed"), seconds=0.5, one_clip=True)
    pdf = tmp_path / "printed.pdf"
    subprocess.run([str(CHROMIUM), *ARGS, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", report.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert len(re.findall(rb"/Subtype\s*/Image", pdf.read_bytes())) == 120


def test_a_big_report_shown_for_a_while_then_as_print_holds_every_poster_once_its_images_have_loaded(
        browser: Any, tmp_path: Path) -> None:
    """A grid of more than 500 videos (its cards hold no posters for paper from the start), scrolled through, so
    that cards far from the view were emptied again, and with players in view: shown as print, every card is
    filled and every cell shows its poster as an image of the page, a player that does not play given back for
    it, so that a script that waits for the page's images (the README's recipe) prints every poster; shown on
    screen again, the cells in view get their players back."""
    jobs = [{"values": {"look": f"look{i:02d}", "seed": s}, "state": "done"} for i in range(30) for s in range(1, 21)]
    report = report_of(tmp_path, jobs, axes=("look", "seed"), seconds=0.5, one_clip=True)
    players = "document.querySelectorAll('#grid video').length"
    with opened(browser, report, width=1280, height=800) as o:
        page = o.page
        for _ in range(8):
            page.mouse.wheel(0, 3000)
            page.wait_for_timeout(100)
        page.evaluate("scrollTo(0, 0)")
        page.wait_for_function(f"{players} > 0")
        assert page.locator(".card.shell").count() > 0  # cards far from the view, never filled or emptied again
        page.emulate_media(media="print")
        page.wait_for_function("document.querySelectorAll('.card.shell').length === 0")  # the media's change event
        assert page.evaluate(players) == 0
        assert page.evaluate("Array.from(document.querySelectorAll('.thumb'),"
                             " (t) => t.querySelector(':scope > img[src]') !== null)") == [True] * 600
        page.wait_for_function("Array.from(document.images).every((i) => i.complete)")
        assert len(re.findall(rb"/Subtype\s*/Image", page.pdf(format="A4"))) == 600
        page.emulate_media(media="screen")
        page.wait_for_function(f"{players} > 0")
        assert o.errors == []

@pytest.mark.parametrize("width", [375, 1280])
def test_a_long_parameter_value_is_cut_within_its_card_with_an_ellipsis(browser: Any, tmp_path: Path, width: int) -> None:
    """A parameter that differs from job to job (not an axis) is shown on each card: a value longer than the card
    stays within it, cut with an ellipsis as the key is, whole in its title; at the smallest card size too."""
    negs = {"anime": "blurry, watermark, text, low quality, jpeg artifacts, extra limbs",
            "clay": "low quality, jpeg artifacts, washed out colours, cropped frame", "cyberpunk": "none at all"}
    jobs = [dict(j, params={"negative_prompt": negs[j["values"]["style"]]}) for j in fox_jobs()]
    report = report_of(tmp_path, jobs, seconds=0.5, one_clip=True)
    with opened(browser, report, width=width, height=900) as o:
        page = o.page
        size = page.locator("#ctl-size")
        for value in (None, size.get_attribute("min")):
            if value is not None:
                size.fill(value)
                page.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
            kvs = page.evaluate("""[...document.querySelectorAll('#grid .card:not(.shell) .vals .kv')].map(v => {
                const c = v.closest('.card').getBoundingClientRect(), r = v.getBoundingClientRect();
                return {title: v.title, right: r.right, card: c.right, cut: v.scrollWidth > v.clientWidth,
                        ellipsis: getComputedStyle(v).textOverflow}; })""")
            longs = [k for k in kvs if "jpeg" in k["title"]]
            assert len(longs) == 8, kvs
            assert all(k["right"] <= k["card"] and k["cut"] and k["ellipsis"] == "ellipsis" for k in longs), longs
            assert {k["title"] for k in longs} == {"negative_prompt = " + negs[s] for s in ("anime", "clay")}
        assert o.errors == []


def test_a_card_whose_video_gridrun_knows_is_gone_says_so_in_its_name(browser: Any, tmp_path: Path) -> None:
    """A video deleted (or replaced) before the page was written: the card's name, which a screen reader says,
    tells so, as its cell shows it, not only "done" and its cost."""
    store, run_id = build_state(tmp_path, fox_jobs(), seconds=0.5, one_clip=True)
    folder = tmp_path / "outputs" / "fox-styles"
    (folder / "clay" / "2.mp4").unlink()
    (folder / "clay" / "3.mp4").write_bytes(b"edited by hand")
    report = write_report(store, run_id=run_id)
    with opened(browser, report) as o:
        label = "el => el.getAttribute('aria-label')"
        gone = o.page.eval_on_selector('.card[data-key="style=clay,seed=2"]', label)
        assert gone.startswith("style=clay,seed=2: done, video file missing, $"), gone
        edited = o.page.eval_on_selector('.card[data-key="style=clay,seed=3"]', label)
        assert edited.startswith("style=clay,seed=3: done, its video was replaced or edited since, $"), edited
        kept = o.page.eval_on_selector('.card[data-key="style=clay,seed=1"]', label)
        assert "missing" not in kept and "kept" not in kept, kept
        assert o.errors == []


def test_a_bidirectional_override_in_a_value_is_shown_escaped_and_reorders_nothing(browser: Any, tmp_path: Path) -> None:
    """A U+202E in one value would reverse the rest of the job's key and prompt as drawn: the page shows it as
    the terminal does (`\\u202e`), on the card, in its values, its prompt and the details view."""
    jobs = [{"values": {"look": v, "seed": s}, "state": "done", "prompt": f"a fox, {v} look, seed {s}",
             "output": f"v{i}/{s}"} for i, v in enumerate(("a\u202eRTL", "plain")) for s in (1, 2)]
    report = report_of(tmp_path, jobs, axes=("look", "seed"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1280, height=900) as o:
        page = o.page
        page.select_option("#ctl-x", "seed")
        page.select_option("#ctl-y", "")
        page.select_option('.ctl-axis[data-axis="look"]', "stack")
        card = page.locator(".card").filter(has_text="RTL").first
        assert card.locator(".key").text_content() == "look=a\\u202eRTL,seed=1"
        assert card.locator(".prompt").text_content() == "a fox, a\\u202eRTL look, seed 1"
        assert "a\\u202eRTL" in card.locator(".kv bdi").all_text_contents()
        drawn = "() => [...document.querySelectorAll('body *:not(script)')].some(e => /[\\u202a-\\u202e\\u2066-\\u2069]/"
        drawn += ".test([...e.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join('') + (e.title || '')))"
        assert page.evaluate(drawn) is False
        card.click()
        page.wait_for_selector("#viewer[open]")
        assert page.locator("#viewer .viewer-head .key").text_content() == "look=a\\u202eRTL,seed=1"
        assert page.evaluate(drawn) is False
        assert o.errors == []


def test_a_printed_card_shows_its_whole_key_which_names_its_cell(browser: Any, tmp_path: Path) -> None:
    """On paper the column headings are not printed: each card's key, cut with an ellipsis on screen, wraps whole,
    so a long prompt's key still names the style and seed of the card."""
    prompts = ("a red fox running through fresh snow at dawn", "a blue cat sleeping on a warm stone wall")
    jobs = [{"values": {"p": p, "style": st, "seed": sd}, "state": "done", "output": f"{i}/{st}/{sd}"}
            for i, p in enumerate(prompts) for st in ("anime", "clay", "comic") for sd in (1, 2)]
    report = report_of(tmp_path, jobs, axes=("p", "style", "seed"), seconds=0.5, one_clip=True)
    with opened(browser, report, width=1000, height=900) as o:
        page = o.page
        page.emulate_media(media="print")
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r))))")
        keys = page.eval_on_selector_all(
            ".card .key", "els => els.map(e => [e.textContent, e.scrollWidth > e.clientWidth, e.getClientRects().length])")
        assert len(keys) == 12
        assert all(not cut and shown for _, cut, shown in keys), keys
        assert o.errors == []


def test_without_javascript_the_page_lists_every_job_with_its_status_cost_error_and_video(
        browser: Any, tmp_path: Path) -> None:
    """A browser that runs no script shows the jobs as a table (key, status and error, cost, the video as a link
    around its poster), and no empty toolbar; with scripts, the grid takes its place."""
    report = report_of(tmp_path, fox_jobs({("clay", 2): "failed", ("anime", 1): "planned"}))
    with serve(report.parent) as base:
        context = browser.new_context(viewport={"width": 1000, "height": 800}, java_script_enabled=False)
        try:
            page = context.new_page()
            page.goto(base + report.name)
            rows = page.eval_on_selector_all("table.static-jobs tbody tr", """rows => rows.map((r) => [
                r.querySelector('th').textContent, ...Array.from(r.querySelectorAll('td'), (d) => d.textContent),
                r.querySelector('a') && r.querySelector('a').getAttribute('href'),
                r.querySelector('img') ? r.querySelector('img').naturalWidth : null])""")
            assert len(rows) == 12
            by_key = {r[0]: r for r in rows}
            assert by_key["style=clay,seed=2"][1].startswith("failed: ")
            assert by_key["style=anime,seed=1"][1] == "pending" and by_key["style=anime,seed=1"][4] is None
            done = by_key["style=clay,seed=3"]
            assert done[1] == "done" and done[2].startswith("$") and done[4].endswith(".mp4") and done[5] > 0
            assert page.locator("nav").count() == 0 and page.get_by_role("navigation").count() == 0
        finally:
            context.close()
    with opened(browser, report) as o:
        assert o.page.locator("table.static-jobs").count() == 0
        assert o.page.get_by_role("region", name="grid controls").count() == 1
        assert o.page.get_by_role("navigation").count() == 0
        assert o.page.locator(".card").count() == 12 and not o.errors


def failed_then_cancelled(tmp_path: Path) -> Path:
    """A compare page whose run A failed a job (with a long error) that run B cancelled."""
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    err = "CONTENT_POLICY_VIOLATION: The prompt or the generated video was flagged by content moderation"
    a_jobs = fox_jobs({("anime", 1): "failed"})
    a_jobs[0]["error"] = err
    b_jobs = fox_jobs({("anime", 1): "cancelled"})
    _, a = build_state(tmp_path, a_jobs, store=store, clock=clock)
    _, b = build_state(tmp_path, b_jobs, store=store, clock=clock, hash_salt="b")
    return write_report(store, compare=(a, b))


def test_without_javascript_on_a_phone_the_job_table_scrolls_in_its_box_not_the_page(
        browser: Any, tmp_path: Path) -> None:
    """At 320 px the compare page's job table (seven columns) is wider than the window: the table scrolls
    sideways in its own box, which a keyboard reaches, and the page does not; a key keeps words on a line, and
    the posters are narrower."""
    report = failed_then_cancelled(tmp_path)
    with serve(report.parent) as base:
        context = browser.new_context(viewport={"width": 320, "height": 640}, java_script_enabled=False)
        try:
            page = context.new_page()
            page.goto(base + report.name)
            sizes = page.evaluate("""(() => {
                const box = document.querySelector('.static-jobs-box');
                const key = document.querySelector('table.static-jobs tbody th');
                const imgs = Array.from(document.querySelectorAll('table.static-jobs img'), (i) => i.getBoundingClientRect().width);
                return [document.documentElement.scrollWidth, document.documentElement.clientWidth,
                        box.scrollWidth, box.clientWidth, box.tabIndex, key.getBoundingClientRect().width, imgs];
            })()""")
            page_width, window, table_width, box_width, tab, key_width, posters = sizes
            assert page_width <= window, sizes
            assert table_width > box_width and tab == 0, sizes
            assert key_width >= 120, sizes
            assert all(w <= 96 for w in posters), sizes
        finally:
            context.close()


def test_on_a_phone_the_corner_sticks_with_the_column_heads_and_the_details_values_keep_their_words(
        browser: Any, tmp_path: Path) -> None:
    """At 320 px the grid's corner sticks at the top with the column heads (not below a toolbar that no longer
    sticks), and the details table's labels leave each run's column the width of its words: a status badge
    stays on one line."""
    report = failed_then_cancelled(tmp_path)
    with opened(browser, report, width=320, height=640) as o:
        page = o.page
        tops = page.evaluate("""[getComputedStyle(document.querySelector('.corner')).top,
                                 getComputedStyle(document.querySelector('.colh')).top]""")
        assert tops == ["0px", "0px"], tops
        page.locator('.card[data-key="style=anime,seed=1"]').focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#viewer[open]")
        badges = page.eval_on_selector_all("#viewer table.attrs .badge", """bs => bs.map((b) => [b.textContent,
            b.getClientRects().length, b.getBoundingClientRect().height, parseFloat(getComputedStyle(b).lineHeight)])""")
        assert [b[0] for b in badges] == ["failed", "cancelled"]
        assert all(rects == 1 and height < 1.5 * line for _, rects, height, line in badges), badges
        label = page.locator("#viewer table.attrs tbody th", has_text="status").bounding_box()
        assert label is not None and label["width"] <= 100, label
        assert o.errors == []


SPLIT_WORDS = """(sel) => Array.from(document.querySelectorAll(sel)).flatMap((cell) => {
  const out = [];
  const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    for (const m of n.data.matchAll(/\\S+/g)) {
      const r = document.createRange();
      r.setStart(n, m.index);
      r.setEnd(n, m.index + m[0].length);
      const lines = new Set(Array.from(r.getClientRects(), (b) => Math.round(b.top)));
      if (lines.size > 1) out.push(m[0]);
    }
  }
  return out;
})"""


@pytest.mark.parametrize("width", [320, 400])
def test_on_a_narrow_screen_the_details_labels_break_between_words_not_inside_them(
        browser: Any, tmp_path: Path, width: int) -> None:
    """On a phone the details table's labels take a narrow column; a label of several words wraps between
    them ("attempts (every run)"), and no word is cut in two ("submitte / d")."""
    report = failed_then_cancelled(tmp_path)
    with opened(browser, report, width=width, height=800) as o:
        page = o.page
        page.locator('.card[data-key="style=anime,seed=1"]').click()
        page.wait_for_selector("#viewer[open]")
        labels = texts(page, "#viewer table.attrs tbody th")
        assert {"submitted", "completed"} <= set(labels), labels
        assert page.evaluate(SPLIT_WORDS, "#viewer table.attrs tbody th") == []
        assert o.errors == []


def test_a_reader_who_asks_for_less_motion_gets_no_endless_spinner_and_no_video_playing_by_itself(
        browser: Any, tmp_path: Path) -> None:
    report = report_of(tmp_path, fox_jobs({("anime", 1): "running"}), end_status=None)
    with opened(browser, report, before=lambda p: p.emulate_media(reduced_motion="reduce")) as o:
        page = o.page
        spin = page.evaluate("""getComputedStyle(document.querySelector('.thumb.g-running .ph'), '::before')
                                .animationName""")
        assert spin == "none"
        page.locator('.card[data-key="style=clay,seed=1"]').focus()
        page.keyboard.press("Enter")
        page.wait_for_function("(() => { const v = document.querySelector('#viewer video');"
                               " return v && v.readyState >= 3; })()")
        page.wait_for_timeout(500)  # time for a play that would start once the video can play
        assert page.evaluate("document.querySelector('#viewer video').paused")
        assert o.errors == []
    with opened(browser, report) as o:  # as before for everyone else
        spin = o.page.evaluate("""getComputedStyle(document.querySelector('.thumb.g-running .ph'), '::before')
                                  .animationName""")
        assert spin == "spin"


def test_the_cancelled_badge_and_a_filtered_cell_read_at_4_5_to_1(browser: Any, tmp_path: Path) -> None:
    report = report_of(tmp_path, fox_jobs({("cyberpunk", 3): "cancelled", ("anime", 1): "failed", ("clay", 2): "failed"}))
    with opened(browser, report) as o:
        page = o.page
        badge = page.evaluate("""(() => { const s = getComputedStyle(document.querySelector('.badge.g-cancelled'));
            return [s.color, s.backgroundColor]; })()""")
        assert contrast(rgba(badge[0]), rgba(badge[1])) >= 4.5, badge
        page.select_option("#ctl-status", "failed")
        cell = page.evaluate("""(() => { const c = document.querySelector('.cell.empty.filtered'), s = getComputedStyle(c);
            return [s.color, s.backgroundColor, s.opacity, c.textContent]; })()""")
        assert cell[3] == "filtered" and cell[2] == "1", cell
        assert contrast(rgba(cell[0]), rgba(cell[1])) >= 4.5, cell


def test_a_card_moved_to_by_keyboard_in_a_column_partly_off_the_window_is_scrolled_fully_into_view(
        browser: Any, tmp_path: Path) -> None:
    report = report_of(tmp_path)
    with opened(browser, report, width=1400, height=700) as o:
        page = o.page
        page.locator("#ctl-size").fill("400")
        last = page.locator('.card[data-key="style=anime,seed=4"]')
        box = last.bounding_box()
        assert box is not None
        page.set_viewport_size({"width": int(box["x"] + 80), "height": 700})  # 80 px of the last column show
        page.locator('.card[data-key="style=anime,seed=3"]').focus()
        page.evaluate("window.scrollTo(0, 0)")
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.dataset.key") == "style=anime,seed=4"
        rect = page.evaluate("(() => { const r = document.activeElement.getBoundingClientRect();"
                             " return [r.left, r.right, document.documentElement.clientWidth]; })()")
        assert rect[0] >= 0 and rect[1] <= rect[2], rect
        assert o.errors == []


def test_a_screen_reader_hears_the_count_a_cards_differences_and_prompt_and_which_job_the_details_show(
        browser: Any, tmp_path: Path) -> None:
    """The count of jobs shown is a status (said after a filter changes); a card is described by its prompt and
    Δ lines; a row of the details that differs between the runs says so in words; the details view is named by
    its job's key and a step to another job is said; the toolbar's buttons and the grid's corner are named
    without their glyphs."""
    report = failed_then_cancelled(tmp_path)
    with opened(browser, report) as o:
        page = o.page
        assert page.get_by_role("status").filter(has_text="12 jobs").count() == 1
        page.select_option("#ctl-status", "failed")
        assert page.get_by_role("status").filter(has_text="showing 1 of 12 jobs").count() == 1
        page.select_option("#ctl-status", "all")
        described = page.evaluate("""(() => { const c = document.querySelector('.card[data-key="style=anime,seed=1"]');
            return document.getElementById(c.getAttribute('aria-describedby')).textContent; })()""")
        assert "Δ status failed → cancelled" in described and "anime style" in described, described
        bar = page.locator("#toolbar").aria_snapshot()
        assert all(f'button "{name}"' in bar for name in ("swap X and Y", "play all", "stop")), bar
        assert not any(glyph in name for name in re.findall(r'button "([^"]*)"', bar) for glyph in "⇄▶■"), bar
        assert page.get_attribute("#ctl-size", "aria-valuetext").endswith(" px")
        # the axes' selects say which side of the grid each lays out, their names starting with the label shown
        assert page.get_by_role("combobox", name="X (columns)", exact=True).get_attribute("id") == "ctl-x"
        assert page.get_by_role("combobox", name="Y (rows)", exact=True).get_attribute("id") == "ctl-y"
        corner = page.locator(".corner").first.aria_snapshot()
        assert "rows: style, columns: seed" in corner and "↓" not in corner, corner
        page.locator('.card[data-key="style=anime,seed=1"]').focus()
        page.keyboard.press("Enter")
        viewer = page.get_by_role("dialog", name="style=anime,seed=1")
        viewer.wait_for()
        differ = texts(page, "#viewer tr.diff th")
        assert differ[:2] == ["status · differs", "error · differs"] and all(t.endswith(" · differs") for t in differ)
        assert viewer.get_by_role("row", name="status · differs failed cancelled").count() == 1
        page.keyboard.press("ArrowRight")
        page.get_by_role("dialog", name="style=anime,seed=2").wait_for()
        said = texts(page, "#viewer [role=status]")
        assert len(said) == 1 and said[0].startswith("style=anime,seed=2: run A: done"), said
        assert o.errors == []


# Every text the page draws, with the opaque colours it may be drawn on: each element's own text (a select's
# too) and each ::before or ::after that says something; its background is the first opaque one of it and its
# ancestors (each colour of a gradient is a candidate), with the translucent ones above it laid over.
DRAWN_TEXTS = """() => {
  const parse = (s) => { const p = s.slice(s.indexOf('(') + 1, s.indexOf(')')).split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  const backs = (el, own) => {
    const layers = [];
    let last = [[255, 255, 255, 1]];
    for (let e = el, s = own; e; e = e.parentElement, s = e && getComputedStyle(e)) {
      const grads = (s.backgroundImage.match(/rgba?\\([^)]*\\)/g) || []).map(parse);
      if (grads.length) { last = grads.map((g) => over(g, [255, 255, 255, 1])); break; }
      const c = parse(s.backgroundColor);
      if (c[3] >= 1) { last = [c]; break; }
      if (c[3] > 0) layers.push(c);
    }
    return last.map((b) => layers.reduceRight((acc, l) => over(l, acc), b));
  };
  const name = (e) => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
  const out = [];
  const add = (e, s, what, own) => {
    const fg = parse(s.color);
    for (const b of backs(e, own)) out.push([what, over(fg, b), b, parseFloat(s.fontSize), Number(s.fontWeight)]);
  };
  for (const e of document.querySelectorAll('body *')) {
    if (['SCRIPT', 'STYLE', 'OPTION', 'NOSCRIPT', 'VIDEO', 'IMG'].includes(e.tagName) || !e.getClientRects().length) continue;
    const s = getComputedStyle(e), r = e.getBoundingClientRect();
    if (s.visibility !== 'visible' || r.width <= 1 || r.height <= 1) continue;  // not drawn (a screen reader's text)
    const own = [...e.childNodes].filter((n) => n.nodeType === 3).map((n) => n.data).join('').trim();
    if (own || e.tagName === 'SELECT') add(e, s, name(e) + ': ' + (own || e.value).slice(0, 40), s);
    for (const pseudo of ['::before', '::after']) {
      const p = getComputedStyle(e, pseudo);
      if (p.display !== 'none' && /^".+"$/.test(p.content)) add(e, p, name(e) + pseudo + ': ' + p.content, p);
    }
  }
  return out;
}"""


def unreadable(page: Any) -> tuple[int, list[Any]]:
    """How many texts are drawn, and those under 4.5:1 on their background (3:1 for large text: 24 px, or
    18.66 px bold)."""
    drawn = page.evaluate(DRAWN_TEXTS)
    bad = []
    for what, fg, bg, size, weight in drawn:
        need = 3.0 if size >= 24 or (size >= 18.66 and weight >= 700) else 4.5
        ratio = contrast(fg, bg)
        if ratio < need:
            bad.append((what, round(ratio, 2), fg[:3], bg[:3]))
    return len(drawn), bad


def page_lightness(page: Any) -> float:
    """The relative luminance of the page's background."""
    bg = rgba(page.evaluate("getComputedStyle(document.body).backgroundColor"))
    return (contrast(bg, (0, 0, 0)) - 1) / 20


def every_state_report(tmp_path: Path) -> Path:
    """A run still going with a job in each state, one of them done but its video file gone."""
    states = dict(zip(
        [(st, sd) for st in ("anime", "clay", "cyberpunk") for sd in (1, 2, 3, 4)],
        ["planned", "submitting", "submitted", "running", "unknown", "rejected", "cancelled", "failed", "expired"]))
    report = report_of(tmp_path, fox_jobs(states), end_status=None, seconds=0.5)
    (report.parent / "cyberpunk" / "3.mp4").unlink()
    return report


def settle(page: Any) -> None:
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r))))")


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_every_text_reads_in_the_readers_colour_scheme_in_every_job_state(
        browser: Any, tmp_path: Path, scheme: str) -> None:
    """Dark unless the reader asks for light: the header, toolbar and filters, every job state's card and badge,
    the missing-video band and the details view read at 4.5:1 or more, and a card's focus ring at 3:1."""
    report = every_state_report(tmp_path)
    with opened(browser, report, scheme=scheme) as o:
        page = o.page
        page.wait_for_selector(".thumb.broken")
        settle(page)
        lightness = page_lightness(page)
        assert (lightness > 0.8) if scheme == "light" else (lightness < 0.02), lightness
        badges = set(texts(page, ".card .badge"))
        assert {"done", "failed", "cancelled", "expired", "running", "rejected"} <= badges, badges
        n, bad = unreadable(page)
        assert n > 100 and not bad, bad
        for key in ("style=clay,seed=4", "style=anime,seed=4"):
            card = page.locator(f'.card[data-key="{key}"]')
            card.focus()
            ring = page.evaluate("(() => { const s = getComputedStyle(document.activeElement); return [s.outlineColor, s.outlineStyle]; })()")
            behind = rgba(page.evaluate("getComputedStyle(document.querySelector('#grid')).backgroundColor"))
            if behind[3] < 1:
                behind = rgba(page.evaluate("getComputedStyle(document.body).backgroundColor"))
            assert ring[1] == "solid" and contrast(rgba(ring[0]), behind) >= 3, ring
            card.press("Enter")
            page.wait_for_selector("#viewer[open]")
            settle(page)
            n, bad = unreadable(page)
            assert not bad, (key, bad)
            page.keyboard.press("Escape")
            page.wait_for_selector("#viewer", state="hidden")
        page.select_option("#ctl-status", "failed")
        settle(page)
        assert not unreadable(page)[1]
        assert not [e for e in o.errors if "WebMediaPlayer" not in e and "404" not in e], o.errors


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_compare_view_a_run_of_cached_jobs_and_the_filters_read_in_the_readers_colour_scheme(
        browser: Any, tmp_path: Path, scheme: str) -> None:
    compare = failed_then_cancelled(tmp_path / "compare")
    store, first = build_state(tmp_path / "cached", fox_jobs(), seconds=0.5, one_clip=True)
    cached = write_report(store, run_id=renamed_run(store, first, "fps", 24))
    jobs = [{"values": {"style": s, "seed": n, "quality": q}, "state": "done", "params": {"quality": q}}
            for s in ("anime", "clay") for n in (1, 2) for q in ("540p", "1080p")]
    filtered = report_of(tmp_path / "filters", jobs, axes=("style", "seed", "quality"), seconds=0.5, one_clip=True)
    for report in (compare, cached, filtered):
        with opened(browser, report, scheme=scheme) as o:
            page = o.page
            if report == filtered:
                page.select_option('.ctl-axis[data-axis="quality"]', "=1")
                assert page.locator(".card").count() == 4
            elif report == cached:
                assert page.locator(".chip.cached").count() == 1
            settle(page)
            assert (page_lightness(page) > 0.8) == (scheme == "light")
            n, bad = unreadable(page)
            assert n > 50 and not bad, (report.name, bad)
            page.locator(".card").first.click()
            page.wait_for_selector("#viewer[open]")
            settle(page)
            assert not unreadable(page)[1], report.name
            assert o.errors == []


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_without_javascript_the_job_table_reads_in_the_readers_colour_scheme(
        browser: Any, tmp_path: Path, scheme: str) -> None:
    report = every_state_report(tmp_path)
    with serve(report.parent) as base:
        context = browser.new_context(viewport={"width": 1000, "height": 800}, java_script_enabled=False,
                                      color_scheme=scheme)
        try:
            page = context.new_page()
            page.goto(base + report.name)
            assert page.locator("table.static-jobs tbody tr").count() == 12
            assert (page_lightness(page) > 0.8) == (scheme == "light")
            n, bad = unreadable(page)
            assert n > 50 and not bad, bad
        finally:
            context.close()


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_a_printed_report_is_dark_on_white_and_every_text_reads(browser: Any, tmp_path: Path, scheme: str) -> None:
    """Whichever scheme the reader's screen shows, paper gets the light one on white; the badges and the
    missing-video band keep their fill, which a printer would otherwise leave out, so their text still reads."""
    for report in (every_state_report(tmp_path / "states"), failed_then_cancelled(tmp_path / "compare")):
        with opened(browser, report, scheme=scheme) as o:
            page = o.page
            page.emulate_media(media="print")
            settle(page)
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
            n, bad = unreadable(page)
            assert n > 50 and not bad, (report.name, bad)
            kept = page.evaluate("""['.badge', '.run-tag', '.thumb.broken'].filter((s) => document.querySelector(s))
                .map((s) => getComputedStyle(document.querySelector(s), s === '.thumb.broken' ? '::after' : null).printColorAdjust)""")
            assert kept and set(kept) == {"exact"}, kept
            assert not [e for e in o.errors if "WebMediaPlayer" not in e and "404" not in e], o.errors


def test_in_the_light_scheme_the_edges_of_the_controls_read_at_3_to_1(browser: Any, tmp_path: Path) -> None:
    """The toolbar's and the details view's buttons and lists stand out from the light page around them."""
    edges = """() => Array.from(document.querySelectorAll('select, button')).filter((e) => e.getClientRects().length)
        .map((e) => { let p = e.parentElement; while (getComputedStyle(p).backgroundColor === 'rgba(0, 0, 0, 0)') p = p.parentElement;
          return [e.id || e.className, getComputedStyle(e).borderTopColor, getComputedStyle(p).backgroundColor]; })"""
    report = report_of(tmp_path, fox_jobs({("clay", 2): "failed"}), seconds=0.5, one_clip=True)
    with opened(browser, report, scheme="light") as o:
        page = o.page
        page.locator(".card").first.click()
        page.wait_for_selector("#viewer[open]")
        seen = page.evaluate(edges)
        assert len(seen) > 10 and page.locator("#viewer button").count() > 0
        low = [(what, round(contrast(rgba(edge), rgba(bg)), 2)) for what, edge, bg in seen
               if contrast(rgba(edge), rgba(bg)) < 3]
        assert not low, low
        assert o.errors == []


def test_an_earlier_runs_re_renders_say_where_their_earlier_take_is_kept_and_one_of_unknown_outcome_says_so(
    browser: Any, tmp_path: Path
) -> None:
    """On the page of a run that ended (an earlier one), a re-render it left in flight shows the take the job had
    then: kept aside since a later take replaced it, or, when nothing kept it, that it is not kept (no video). A
    re-render of unknown outcome shows the earlier take still at its path, as such. A job marked cached whose
    re-render here failed reads "made earlier in run 7" on its cost, not "cached"."""
    report = report_of(tmp_path)
    with opened(browser, report) as o:
        page = o.page
        page.evaluate("""() => {
          const set = (key, f) => { f(gridrun.data.items.find((i) => i.key === key).jobs[0]); };
          set('style=anime,seed=1', (j) => { j.state = 'submitted'; j.rerender = { cost: 200000, run: 1, aside: true }; });
          set('style=anime,seed=2', (j) => { j.state = 'submitted'; delete j.src; delete j.poster;
                                             j.rerender = { cost: 200000, run: 1, gone: true }; });
          set('style=anime,seed=3', (j) => { j.state = 'unknown'; j.rerender = { cost: 200000, run: 1 }; });
          set('style=clay,seed=1', (j) => { j.cached = j.paid = 7; j.kept = true; j.rerr = 'boom'; });
          gridrun.update(false); }""")
        notes = page.evaluate("""() => Array.from(document.querySelectorAll('.card'), (c) => [c.dataset.key,
          (c.querySelector('.rerender') || {}).textContent || null])""")
        assert notes[:3] == [
            ["style=anime,seed=1", "re-render left in flight: run 1's take ($0.20) shown, kept aside since a later take replaced it"],
            ["style=anime,seed=2", "re-render left in flight: run 1's take ($0.20) was its video, replaced by a later take and not kept"],
            ["style=anime,seed=3", "re-render of unknown outcome: run 1's take ($0.20) shown, kept until a new one arrives"]], notes
        assert page.locator('.card[data-key="style=anime,seed=2"] .thumb[data-src]').count() == 0
        title = page.locator('.card[data-key="style=clay,seed=1"] .cost').get_attribute("title")
        assert title is not None and title.startswith("made earlier in run 7, "), title
        assert o.errors == []


def test_a_missing_poster_leaves_the_video_to_show_its_first_frame(browser: Any, tmp_path: Path) -> None:
    """A done job whose poster is gone (deleted, a folder copied without its .jpg files) but whose video is there
    shows the video's first frame, not an empty box: its player is left without a poster, in the grid and in the
    details view."""
    report = report_of(tmp_path)
    (report.parent / "anime" / "2.jpg").unlink()
    with opened(browser, report, from_disk=True) as o:
        page = o.page
        posters = """(sel) => Array.from(document.querySelectorAll(sel), (v) => [v.closest('.card') ?
            v.closest('.card').dataset.key : 'viewer', v.getAttribute('poster')])"""
        page.wait_for_function(f"({posters})('.card[data-key=\"style=anime,seed=2\"] video').some((p) => p[1] === null)")
        assert page.evaluate(posters, '.card[data-key="style=anime,seed=1"] video') == [["style=anime,seed=1", "anime/1.jpg"]]
        page.locator('.card[data-key="style=anime,seed=2"]').click()
        page.wait_for_function(f"({posters})('#viewer video').every((p) => p[1] === null)")
        assert [e for e in o.errors if "2.jpg" not in e and "ERR_FILE_NOT_FOUND" not in e] == []


def test_a_video_deleted_after_the_run_says_gridrun_run_fetches_it_again(browser: Any, tmp_path: Path) -> None:
    """The page rebuilt after a video was deleted says the file is missing and that `gridrun run` fetches it again
    (as `plan` counts it: to fetch again, free) while its download link lasts, and `retry` renders it again after,
    in its cell and its details; not that it was replaced or edited."""
    store, run_id = build_state(tmp_path, fox_jobs())
    (tmp_path / "outputs" / "fox-styles" / "anime" / "2.mp4").unlink()
    report = write_report(store, run_id=run_id)
    with opened(browser, report) as o:
        page = o.page
        said = ("video file missing: `gridrun run` fetches it again (free) while its download link lasts (else "
                "`gridrun retry` renders it again, paid)")
        assert page.locator('.card[data-key="style=anime,seed=2"] .ph').text_content() == said
        page.locator('.card[data-key="style=anime,seed=2"]').click()
        assert detail(page, "output") == said
        assert o.errors == []


def test_a_video_edited_after_the_run_says_gridrun_run_fetches_it_again_as_the_plain_table_does(
    browser: Any, tmp_path: Path
) -> None:
    """The page rebuilt after a video was replaced by another file says that `gridrun run` keeps that file aside
    and fetches the video again (as `plan` counts it: to fetch again, free), in its cell and its details, in the
    words of the table for a browser without JavaScript; not that it is no longer kept."""
    import html as markup

    store, run_id = build_state(tmp_path, fox_jobs())
    (tmp_path / "outputs" / "fox-styles" / "anime" / "2.mp4").write_bytes(b"edited by hand")
    report = write_report(store, run_id=run_id)
    said = ("its video was replaced or edited since: `gridrun run` keeps that file under .runs/superseded/ and"
            " fetches the video again (free) while its download link lasts (else `gridrun retry` renders it again,"
            " paid)")
    assert f"<td>{markup.escape(said)}" in report.read_text()
    with opened(browser, report) as o:
        page = o.page
        assert page.locator('.card[data-key="style=anime,seed=2"] .ph').text_content() == said
        page.locator('.card[data-key="style=anime,seed=2"]').click()
        assert detail(page, "output") == said
        assert o.errors == []


def test_the_details_view_shows_an_integer_beyond_what_a_script_holds_exactly_as_sent(
    browser: Any, tmp_path: Path
) -> None:
    """A 64-bit id beyond 2^53 reads in the details view as it was sent, not rounded (9007199254740993 read as a
    number is 9007199254740992); two runs' values differing past 2^53 are two values, not one."""
    jobs = [{"values": {"style": "anime", "seed": n}, "state": "done", "params": {"big_id": big}}
            for n, big in ((1, 2**53 + 1), (2, 1234567890123456789))]
    report = report_of(tmp_path, jobs)
    with opened(browser, report) as o:
        page = o.page
        for key, said in (("style=anime,seed=1", "9007199254740993"), ("style=anime,seed=2", "1234567890123456789")):
            page.locator(f'.card[data-key="{key}"]').click()
            page.wait_for_selector("#viewer[open]")
            assert detail(page, "big_id") == said
            page.keyboard.press("Escape")
        assert o.errors == []


def test_a_value_cut_short_is_cut_between_characters_not_inside_an_emoji(browser: Any, tmp_path: Path) -> None:
    """A long axis value cut where an emoji (two UTF-16 units) or a family of emoji joined by ZWJs falls keeps it
    whole before the "…", not half of it (a lone surrogate, drawn as "�")."""
    fox, family = "\U0001f98a", "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    styles = {"fox": "a" * 198 + fox + " tail", "family": "a" * 197 + family + " tail"}
    jobs = [{"values": {"style": v, "seed": n}, "state": "done"} for v in styles.values() for n in (1, 2)]
    report = report_of(tmp_path, jobs)
    with opened(browser, report) as o:
        page = o.page
        for name, value in styles.items():
            page.evaluate("""(v) => { const d = gridrun.data, a = d.axes.findIndex((x) => x.id === 'style');
                const at = d.axes[a].values.indexOf(v); gridrun.open(d.items.findIndex((i) => i.ix[a] === at)); }""",
                          value)
            page.wait_for_selector("#viewer[open]")
            said = detail(page, "style")
            assert said == value[:199 if name == "fox" else 203] + "…", (name, said)
            page.keyboard.press("Escape")
        assert o.errors == []


def test_a_printed_row_head_names_its_axis(browser: Any, tmp_path: Path) -> None:
    """On paper, where the column heads and the corner that names the axes are not printed, each row head reads
    "seed = 1", not a bare "1"; on screen the corner names the axis and the head holds the value alone."""
    report = report_of(tmp_path)
    with opened(browser, report) as o:
        page = o.page
        page.select_option("#ctl-x", "style")
        page.select_option("#ctl-y", "seed")
        before = ("Array.from(document.querySelectorAll('.rowh .axis-val'))"
                  ".map((e) => [getComputedStyle(e, '::before').content, e.textContent])")
        assert page.evaluate(before) == [["none", str(n)] for n in (1, 2, 3, 4)]
        page.emulate_media(media="print")
        assert page.evaluate(before) == [['"seed = "', str(n)] for n in (1, 2, 3, 4)]
        page.emulate_media(media="screen")
        assert o.errors == []


def test_a_status_chosen_that_no_job_has_now_stays_chosen_and_says_none_now(browser: Any, tmp_path: Path) -> None:
    """The live page's last reload brings the finished page, where no job is running: the status filter the reader
    chose stays chosen (in the select and the URL), and the count and the grid say none is left, rather than every
    job of the run shown in its place unasked."""
    from runner.state import JobState

    states = {("anime", 1): "running"}
    store, run_id = build_state(tmp_path, fox_jobs(states), end_status=None)
    report = write_report(store, run_id=run_id)
    with opened(browser, report) as o:
        page = o.page
        page.select_option("#ctl-status", "running")
        assert page.locator("#ctl-count").text_content() == "showing 1 of 12 jobs"
        store.transition(next(j.id for j in store.snapshot(run_id).jobs if j.key == "style=anime,seed=1"),
                         JobState.FAILED, error="gone")
        store.end_run(run_id, "completed")
        write_report(store, run_id=run_id)
        with page.expect_navigation():
            page.evaluate("gridrun.reload()")  # what the live page does when the run wrote a new snapshot
        page.wait_for_function("window.gridrun !== undefined")
        assert page.locator("#ctl-status").input_value() == "running"
        assert page.locator('#ctl-status option[value="running"]').text_content() == "left in flight (none now)"
        assert page.locator("#ctl-count").text_content() == "left in flight: none now · showing 0 of 12 jobs"
        assert page.locator("#grid .empty-note").text_content() == (
            "No job is left in flight now: pick \u201call\u201d in status to see the others.")
        assert "status=running" in page.evaluate("location.hash")
        page.select_option("#ctl-status", "all")
        assert page.locator("#ctl-count").text_content() == "12 jobs"
        assert o.errors == []


def test_a_page_with_no_video_disables_its_play_buttons_and_says_why(browser: Any, tmp_path: Path) -> None:
    """A run whose jobs all failed has nothing to play: "play all" and each row's and column's ▶ are disabled, and
    their titles say why, rather than buttons that do nothing."""
    states = {(style, seed): "failed" for style in ("anime", "clay", "cyberpunk") for seed in (1, 2, 3, 4)}
    report = report_of(tmp_path, fox_jobs(states))
    with opened(browser, report) as o:
        page = o.page
        buttons = page.evaluate("""Array.from(document.querySelectorAll('#ctl-play, #grid button'),
            (b) => [b.disabled, b.title.endsWith('(nothing to play: no job has a video)') || b.title === 'nothing to play: no job has a video'])""")
        assert len(buttons) == 8 and all(b == [True, True] for b in buttons), buttons
        assert o.errors == []


def _a_force_run_begun(tmp_path: Path) -> tuple[Path, int]:
    """Two jobs run to their end, then a --force run of them begun (recorded, nothing sent yet): the manifest and
    that run's id."""
    from execkit import sim_provider, write_manifest

    from runner import api, resume
    from runner.options import RunOptions

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    with ThreadPoolExecutor(1) as pool:  # not on this thread, where Playwright's event loop runs
        assert pool.submit(lambda: api.run(m, provider=sim_provider(m))).result().exit_code == 0
    with Store(m.parent / ".gridrun" / "state.db") as store:
        return m, resume.prepare(api.plan(m), store, RunOptions(force=True), budget_micros=None).run_id


def test_jobs_a_force_run_has_not_sent_say_they_are_to_be_re_rendered_then_that_they_were_not(
        browser: Any, tmp_path: Path) -> None:
    """On the live page of a --force run, a done job it has not sent yet says it is to be re-rendered, its earlier
    take shown; on the page of the run killed before sending it, that it was not re-rendered."""
    from runner import api

    m, rid = _a_force_run_begun(tmp_path)
    report = api.report(m, run_id=rid)
    notes = "Array.from(document.querySelectorAll('.card .rerender'), (n) => n.textContent)"
    with opened(browser, report) as o:
        assert o.page.evaluate(notes) == ["to be re-rendered: run 1's take ($0.35) shown, kept until a new one arrives"] * 2
    with Store(m.parent / ".gridrun" / "state.db") as store:
        store.end_run(rid, "crashed")
    report = api.report(m, run_id=rid)
    with opened(browser, report) as o:
        assert o.page.evaluate(notes) == ["not re-rendered: the run stopped before sending it; run 1's take ($0.35) kept"] * 2
        assert o.errors == []


def test_a_live_force_page_that_stops_updating_says_its_unsent_re_renders_were_not_made_in_its_header_too(
        browser: Any, tmp_path: Path) -> None:
    """Once the live page of a --force run decides its run no longer writes it, the header's chip says, as the
    cards do and as the page rebuilt after says, that the re-renders not sent were not made."""
    import datetime
    import json

    m, rid = _a_force_run_begun(tmp_path)
    with Store(m.parent / ".gridrun" / "state.db") as store:
        report = write_report(store, run_id=rid, refresh=30)
    data = json.loads(re.search(r'id="gridrun-data">(.*?)</script>', report.read_text(), re.DOTALL).group(1))
    chip = ".run-summary .chip.rerenders-unsent"

    def before(page: Any) -> None:
        page.clock.install(time=datetime.datetime.now())
        page.add_init_script(f"""sessionStorage.setItem("gridrun.seen:/{report.name}",
            JSON.stringify({{taken: {json.dumps(data["runs"][0]["taken"])}, at: Date.now() - 600000}}));""")

    with opened(browser, report, before=before) as o:
        page = o.page
        assert page.locator(".stale-note").count() == 1
        assert page.locator(chip).text_content() == "2 not re-rendered (the run stopped first)"
        assert "stopped before sending them" in page.locator(chip).get_attribute("title")
        assert "cached" in page.locator(chip).get_attribute("class")
        notes = "Array.from(document.querySelectorAll('.card .rerender'), (n) => n.textContent)"
        assert page.evaluate(notes) == ["not re-rendered: the run stopped before sending it; run 1's take ($0.35) kept"] * 2
        assert o.errors == []

def test_a_cards_cost_says_what_its_details_say_and_no_estimate_for_a_job_that_ended(browser: Any, tmp_path: Path) -> None:
    """A rejected job was paid nothing; a failed, cancelled or expired one without a figure had none reported: no
    card shows them an estimate as if it were a cost. A job not sent or in flight shows its estimate."""
    states = {("anime", 1): "rejected", ("anime", 2): "failed", ("anime", 3): "cancelled", ("anime", 4): "expired",
              ("clay", 1): "planned", ("clay", 2): "submitted", ("clay", 3): "unknown"}
    jobs = [dict(j, estimate=350_000) for j in fox_jobs(states) if (j["values"]["style"], j["values"]["seed"]) in states]
    store, run_id = build_state(tmp_path, jobs, seconds=0.5, one_clip=True, end_status=None)
    report = write_report(store, run_id=run_id)
    with opened(browser, report) as o:
        page = o.page
        shown = {}
        for (style, seed), state in states.items():
            card = page.locator(f'.card[data-key="style={style},seed={seed}"]')
            cost = card.locator(".cost").text_content()
            label = card.get_attribute("aria-label")
            card.click()
            page.wait_for_selector("#viewer[open]")
            shown[state] = (cost, label.split(": ", 1)[1].split(", ")[1], detail(page, "cost"))
            page.keyboard.press("Escape")
            page.wait_for_selector("#viewer", state="hidden")
        assert shown == {
            "rejected": ("$0.00", "nothing paid", "rejected: nothing paid"),
            "failed": ("–", "cost not reported", "not reported"),
            "cancelled": ("–", "cost not reported", "not reported"),
            "expired": ("–", "cost not reported", "not reported"),
            "planned": ("~$0.35", "estimated $0.35", "not sent: nothing paid"),
            "submitted": ("~$0.35", "estimated $0.35", "not reported"),
            "unknown": ("~$0.35", "estimated $0.35", "not reported"),
        }, shown
        assert o.errors == []

FOCUSED = "document.activeElement.dataset.key || document.activeElement.getAttribute('aria-label')"


def test_the_arrow_keys_move_between_a_grids_cards_and_tab_leaves_the_grid_at_once(browser: Any, tmp_path: Path) -> None:
    """A grid is one Tab stop: its first card, then the one last focused. The arrows move by rows and columns (to
    a row's or a column's ▶ past its first card), Home and End to a row's ends (the column heads' too); Enter still
    opens the details, whose own arrows still step through the jobs."""
    report = report_of(tmp_path, one_clip=True)
    with opened(browser, report) as o:
        page = o.page
        stops = page.evaluate("Array.from(document.querySelectorAll('#grid .card, #grid button'))"
                              ".filter((e) => e.tabIndex >= 0).map((e) => e.dataset.key || e.getAttribute('aria-label'))")
        assert stops == ["style=anime,seed=1"], stops
        page.locator('.card[data-key="style=anime,seed=1"]').focus()
        page.keyboard.press("ArrowRight")
        assert page.evaluate(FOCUSED) == "style=anime,seed=2"
        page.keyboard.press("ArrowDown")
        assert page.evaluate(FOCUSED) == "style=clay,seed=2"
        page.keyboard.press("End")
        assert page.evaluate(FOCUSED) == "style=clay,seed=4"
        page.keyboard.press("ArrowDown")
        assert page.evaluate(FOCUSED) == "style=cyberpunk,seed=4"
        page.keyboard.press("ArrowDown")  # the last row: the focus stays
        assert page.evaluate(FOCUSED) == "style=cyberpunk,seed=4"
        page.keyboard.press("Home")
        assert page.evaluate(FOCUSED) == "style=cyberpunk,seed=1"
        page.keyboard.press("ArrowLeft")
        assert page.evaluate(FOCUSED) == "play row style = cyberpunk in sync"
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowUp")
        page.keyboard.press("ArrowUp")
        page.keyboard.press("ArrowUp")
        assert page.evaluate(FOCUSED) == "play column seed = 1 in sync"
        # along the column heads' ▶, Home and End to their ends, as along a row's cards
        page.keyboard.press("End")
        assert page.evaluate(FOCUSED) == "play column seed = 4 in sync"
        page.keyboard.press("Home")
        assert page.evaluate(FOCUSED) == "play column seed = 1 in sync"
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Control+End")
        assert page.evaluate(FOCUSED) == "style=cyberpunk,seed=4"
        # the card last focused is the grid's one Tab stop; Tab leaves the grid
        page.keyboard.press("Tab")
        assert page.evaluate("!document.activeElement.closest('.grid')")
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(FOCUSED) == "style=cyberpunk,seed=4"
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
        page.wait_for_selector("#viewer[open]")
        viewer_key = "document.querySelector('#viewer .viewer-head .key').textContent"
        assert page.evaluate(viewer_key) == "style=cyberpunk,seed=3"
        page.keyboard.press("ArrowRight")
        assert page.evaluate(viewer_key) == "style=cyberpunk,seed=4"
        page.keyboard.press("Escape")
        page.wait_for_function(f"({FOCUSED}) === 'style=cyberpunk,seed=4'")  # the card last shown (the close event's)
        # with no Y the cells flow: the arrows still move card to card
        page.select_option("#ctl-y", "")
        page.locator('.card[data-key="style=anime,seed=1"]').focus()
        page.keyboard.press("ArrowRight")
        assert page.evaluate(FOCUSED) == "style=anime,seed=2"
        assert o.errors == []

def test_in_cards_that_wrap_the_keys_go_by_the_lines_on_screen(browser: Any, tmp_path: Path) -> None:
    """One axis: 40 cards flow 5 to a line. Home and End go to the ends of the focused card's line, not of all 40
    (Ctrl+Home and Ctrl+End do that); the arrows up and down go to the card above or below, left and right on
    from a line's end to the next line."""
    jobs = [{"values": {"seed": n}, "state": "done", "output": f"take-{n}"} for n in range(1, 41)]
    report = report_of(tmp_path, jobs, axes=("seed",), one_clip=True)
    with opened(browser, report) as o:
        page = o.page
        tops = page.eval_on_selector_all(".flow .card", "els => els.map((e) => Math.round(e.getBoundingClientRect().top))")
        assert len(tops) == 40 and len(set(tops[:5])) == 1 and tops[5] > tops[4], tops[:6]
        page.locator('.card[data-key="seed=2"]').focus()
        page.keyboard.press("End")
        assert page.evaluate(FOCUSED) == "seed=5"
        page.keyboard.press("ArrowDown")
        assert page.evaluate(FOCUSED) == "seed=10"
        page.keyboard.press("ArrowRight")  # on to the next line's first card
        assert page.evaluate(FOCUSED) == "seed=11"
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Home")
        assert page.evaluate(FOCUSED) == "seed=6"
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowRight")
        assert page.evaluate(FOCUSED) == "seed=17"
        page.keyboard.press("ArrowUp")
        assert page.evaluate(FOCUSED) == "seed=12"
        page.keyboard.press("Control+End")
        assert page.evaluate(FOCUSED) == "seed=40"
        page.keyboard.press("ArrowDown")  # the last line: the focus stays
        assert page.evaluate(FOCUSED) == "seed=40"
        page.keyboard.press("Home")
        assert page.evaluate(FOCUSED) == "seed=36"
        page.keyboard.press("ArrowUp")
        assert page.evaluate(FOCUSED) == "seed=31"
        page.keyboard.press("Control+Home")
        assert page.evaluate(FOCUSED) == "seed=1"
        page.keyboard.press("ArrowUp")  # the first line: the focus stays
        assert page.evaluate(FOCUSED) == "seed=1"
        stops = page.evaluate("Array.from(document.querySelectorAll('#grid .card')).filter((e) => e.tabIndex >= 0).length")
        assert stops == 1
        page.keyboard.press("Enter")
        page.wait_for_selector("#viewer[open]")
        assert page.evaluate("document.querySelector('#viewer .viewer-head .key').textContent") == "seed=1"
        assert o.errors == []


def test_the_arrow_keys_pass_over_an_empty_cell_and_keep_the_place_in_a_cell_of_several_cards(
        browser: Any, tmp_path: Path) -> None:
    """Style by seed, each cell holding the takes `v` p and q side by side, no job for style b and seed 1: up and
    down keep to the second card of a cell and pass over the empty one; left and right go card by card."""
    jobs = [{"values": {"style": st, "seed": sd, "v": v}, "state": "done", "output": f"{st}-{sd}-{v}"}
            for st in "abc" for sd in (1, 2) for v in "pq" if (st, sd) != ("b", 1)]
    report = report_of(tmp_path, jobs, axes=("style", "seed", "v"), one_clip=True)
    with opened(browser, report, fragment="x=seed&y=style&m.v=stack") as o:
        page = o.page
        page.wait_for_function("window.gridrun !== undefined && document.querySelectorAll('.cell.empty').length === 1")
        page.locator('.card[data-key="style=a,seed=1,v=q"]').focus()
        page.keyboard.press("ArrowDown")
        assert page.evaluate(FOCUSED) == "style=c,seed=1,v=q"
        page.keyboard.press("ArrowUp")
        assert page.evaluate(FOCUSED) == "style=a,seed=1,v=q"
        page.keyboard.press("ArrowRight")
        assert page.evaluate(FOCUSED) == "style=a,seed=2,v=p"
        page.keyboard.press("ArrowDown")
        assert page.evaluate(FOCUSED) == "style=b,seed=2,v=p"
        page.keyboard.press("End")
        assert page.evaluate(FOCUSED) == "style=b,seed=2,v=q"
        page.keyboard.press("Home")
        assert page.evaluate(FOCUSED) == "style=b,seed=2,v=p"
        page.keyboard.press("ArrowLeft")
        assert page.evaluate(FOCUSED) == "play row style = b in sync"
        page.keyboard.press("ArrowUp")
        assert page.evaluate(FOCUSED) == "play row style = a in sync"
        page.keyboard.press("ArrowUp")  # the corner: nothing there, the focus stays
        assert page.evaluate(FOCUSED) == "play row style = a in sync"
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowUp")
        assert page.evaluate(FOCUSED) == "play column seed = 1 in sync"
        page.keyboard.press("ArrowRight")
        assert page.evaluate(FOCUSED) == "play column seed = 2 in sync"
        page.keyboard.press("ArrowDown")
        assert page.evaluate(FOCUSED) == "style=a,seed=2,v=p"
        page.keyboard.press("Control+Home")
        assert page.evaluate(FOCUSED) == "style=a,seed=1,v=p"
        assert o.errors == []


def test_a_grid_of_grids_heading_and_the_details_cut_a_long_axis_value(browser: Any, tmp_path: Path) -> None:
    """A prompt of 3,000 characters as an axis: each group's heading stays a line or two (the whole value in its
    title), and the details view's row of that axis is cut too, so that the cost and the output stay near the top;
    the prompt under "parameters" is shown whole."""
    long = ("word " * 600).strip()
    jobs = [{"values": {"p": p, "v": v}, "state": "done", "prompt": p, "output": f"{n}-{v}"}
            for n, p in enumerate(("short", long, "mid")) for v in ("a", "b")]
    report = report_of(tmp_path, jobs, axes=("p", "v"), one_clip=True)
    with opened(browser, report, fragment="x=v&y=") as o:
        page = o.page
        page.wait_for_function("window.gridrun !== undefined && document.querySelectorAll('.group-head').length === 3")
        heads = page.eval_on_selector_all(".group-head", "els => els.map(e => [e.getBoundingClientRect().height,"
                                          " e.querySelector('span').title])")
        assert all(height < 60 for height, _ in heads), heads
        assert [title for _, title in heads] == ["p = short", "p = " + long, "p = mid"]
        page.locator(f'.card[data-key="p={long},v=a"]').click()
        page.wait_for_selector("#viewer[open]")
        shown = detail(page, "p")
        assert len(shown) == 200 and shown.endswith("…") and long.startswith(shown[:-1]), len(shown)
        assert texts(page, "#viewer .prompt-full") == [long]
        assert o.errors == []


def test_an_empty_value_a_value_with_spaces_at_its_ends_and_one_reading_unset_are_shown_quoted(
        browser: Any, tmp_path: Path) -> None:
    """A head, a grid of grids' heading and a filter option show the empty text as "", a value with spaces at its
    ends and the text "(unset)" quoted, so that none reads as nothing or as another value."""
    values = ["", "  spaced  ", "spaced", "(unset)"]
    jobs = [{"values": {"v": v, "k": k}, "state": "done", "key": f"v={v},k={k}", "output": f"{n}-{k}"}
            for n, v in enumerate(values) for k in ("a", "b")]
    report = report_of(tmp_path, jobs, axes=("v", "k"), one_clip=True)
    quoted = ['""', '"  spaced  "', "spaced", '"(unset)"']
    with opened(browser, report) as o:
        page = o.page
        page.select_option("#ctl-x", "v")
        page.select_option("#ctl-y", "k")
        assert texts(page, ".colh .axis-val") == quoted
        page.select_option("#ctl-y", "v")
        page.select_option("#ctl-x", "k")
        assert texts(page, ".rowh .axis-val") == quoted
        page.select_option("#ctl-y", "")
        assert texts(page, ".group-head span") == ["v = " + q for q in quoted]
        assert texts(page, '.ctl-axis[data-axis="v"] option')[2:] == ["only " + q for q in quoted]
        assert o.errors == []


def test_jobs_of_a_sweep_without_a_key_are_unset_apart_from_a_value_reading_unset(browser: Any, tmp_path: Path) -> None:
    """Sweep `one` sets `mood` to the text "(unset)" or "calm", sweep `two` has no `mood`: the row of the jobs without
    it reads (unset) in italics and holds only sweep two's; the value reads "(unset)", quoted, with sweep one's."""
    jobs = [{"values": {"mood": m, "n": n}, "state": "done", "sweep": "one", "key": f"one:mood={m},n={n}",
             "output": f"one-{i}-{n}"} for i, m in enumerate(("(unset)", "calm")) for n in (1, 2)]
    jobs += [{"values": {"n": n}, "state": "done", "sweep": "two", "key": f"two:n={n}", "output": f"two-{n}"}
             for n in (1, 2)]
    report = report_of(tmp_path, jobs, axes=("mood", "n"), one_clip=True)
    with opened(browser, report, fragment="x=n&y=mood&m.%40sweep=stack") as o:
        page = o.page
        page.wait_for_function("window.gridrun !== undefined && document.querySelectorAll('.rowh').length === 3")
        rows = page.eval_on_selector_all(".rowh", """els => els.map((e) => [e.querySelector('.axis-val').textContent,
            getComputedStyle(e.querySelector('.axis-val')).fontStyle,
            Array.from(document.querySelectorAll('.cell[data-row="' + e.dataset.row + '"] .card'), (c) => c.dataset.key)])""")
        assert rows == [['"(unset)"', "normal", ["one:mood=(unset),n=1", "one:mood=(unset),n=2"]],
                        ["calm", "normal", ["one:mood=calm,n=1", "one:mood=calm,n=2"]],
                        ["(unset)", "italic", ["two:n=1", "two:n=2"]]], rows
        page.select_option("#ctl-y", "")
        assert texts(page, '.ctl-axis[data-axis="mood"] option')[2:] == ['only "(unset)"', "only calm", "only (unset)"]
        page.select_option('.ctl-axis[data-axis="mood"]', "=2")
        page.wait_for_function("document.querySelectorAll('.card').length === 2")
        assert page.eval_on_selector_all(".card", "els => els.map((e) => e.dataset.key)") == ["two:n=1", "two:n=2"]
        assert o.errors == []


def test_the_details_view_says_when_a_job_that_ended_without_its_video_ended(browser: Any, tmp_path: Path) -> None:
    """A failed job's details say when it ended (the export's and `status --json`'s `ended_at`), on the clock the
    other times are on; a done job's details have no such row."""
    jobs = [{"values": {"style": "anime", "seed": 1}, "state": "done"},
            {"values": {"style": "anime", "seed": 2}, "state": "failed", "error": "content moderation"}]
    report = report_of(tmp_path, jobs)
    with opened(browser, report) as o:
        page = o.page
        failed = page.evaluate("gridrun.data.items.map((it) => it.jobs[0]).find((j) => j.state === 'failed')")
        assert failed.get("end"), failed
        page.locator('.card[data-key="style=anime,seed=2"]').click()
        page.wait_for_selector("#viewer[open]")
        shown = detail(page, "ended")
        expected = page.evaluate("(t) => { const d = new Date(t * 1000); return d.getFullYear() + '-' + "
                                 "String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0')"
                                 " + ' ' + String(d.getHours()).padStart(2, '0') + ':' + "
                                 "String(d.getMinutes()).padStart(2, '0') + ':' + String(d.getSeconds()).padStart(2, '0'); }",
                                 failed["end"])
        assert shown.startswith(expected), (shown, expected)
        page.keyboard.press("Escape")
        page.wait_for_selector("#viewer", state="hidden")
        page.locator('.card[data-key="style=anime,seed=1"]').click()
        page.wait_for_selector("#viewer[open]")
        rows = page.evaluate("Array.from(document.querySelectorAll('#viewer tbody tr th'), (t) => t.textContent)")
        assert "downloaded" in rows and "ended" not in rows, rows
        assert o.errors == []


# A grid of 5,000 jobs: 50 × 100 in one grid, or 25 × 20 × 10 as ten grids of 500; no files (the page alone).
BIG_FILLED = "document.querySelectorAll('#grid .card .panes').length"
BIG_NODES = "document.getElementsByTagName('*').length"


def big_jobs(axes: tuple[str, ...], sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    import itertools
    jobs = []
    for n, ix in enumerate(itertools.product(*(range(s) for s in sizes))):
        jobs.append({"values": {a: f"{a}{i:03d}" for a, i in zip(axes, ix)}, "state": "failed" if n % 7 == 0 else "planned",
                     "prompt": f"scene {n}: a red fox running through fresh snow"})
    return jobs


def test_a_grid_of_5000_jobs_fills_only_the_cards_near_the_view(browser: Any, tmp_path: Path) -> None:
    """Every job has its card's box (its place in the grid, its name), but only the cards near the view are filled:
    the page holds a few elements a job, not eighteen, however many jobs; scrolling to the end fills the last ones
    and empties the first; a filter keeps it so."""
    report = report_of(tmp_path, big_jobs(("look", "cam", "seed"), (25, 20, 10)), axes=("look", "cam", "seed"))
    with opened(browser, report, width=1400, height=900) as o:
        page = o.page
        assert page.locator("#ctl-count").text_content() == "5,000 jobs"
        assert page.evaluate("document.querySelectorAll('#grid .card').length") == 5000
        assert page.evaluate("document.querySelectorAll('#grid .group').length") == 10
        assert 0 < page.evaluate(BIG_FILLED) < 1000
        assert page.evaluate(BIG_NODES) < 5000 * 4
        # the cards in view are filled, each with its description
        page.wait_for_function("Array.from(document.querySelectorAll('#grid .card')).slice(0, 20)"
                               ".every((c) => c.querySelector('.panes') && document.getElementById(c.getAttribute('aria-describedby')))")
        last = page.evaluate("Array.from(document.querySelectorAll('#grid .card')).pop().dataset.key")
        assert page.evaluate(f"document.querySelector('.card[data-key=\"{last}\"] .panes')") is None
        page.evaluate("window.scrollTo(document.documentElement.scrollWidth, document.documentElement.scrollHeight)")
        page.wait_for_function(f"document.querySelector('.card[data-key=\"{last}\"] .panes') !== null")
        page.wait_for_function("document.querySelector('#grid .card').querySelector('.panes') === null")  # far away now
        assert page.evaluate(BIG_FILLED) < 1000
        page.select_option("#ctl-status", "failed")
        assert page.evaluate("document.querySelectorAll('#grid .card').length") == 715
        assert page.evaluate(BIG_FILLED) < 1000
        page.select_option("#ctl-status", "all")
        assert page.evaluate("document.querySelectorAll('#grid .card').length") == 5000
        assert page.evaluate(BIG_FILLED) < 1000 and page.evaluate(BIG_NODES) < 5000 * 4
        assert o.errors == []


def test_the_keyboard_reaches_the_last_of_5000_cards_and_opens_it(browser: Any, tmp_path: Path) -> None:
    """The arrow keys and Ctrl+End go through cards not filled yet as through the others: the card reached is
    filled, scrolled to, and Enter opens its details."""
    report = report_of(tmp_path, big_jobs(("row", "col"), (100, 50)), axes=("row", "col"))
    with opened(browser, report, width=1400, height=900) as o:
        page = o.page
        assert page.evaluate(BIG_FILLED) < 1000
        page.locator('.card[data-key="row=row000,col=col000"]').focus()
        page.keyboard.press("Control+End")
        assert page.evaluate(FOCUSED) == "row=row099,col=col049"
        assert page.evaluate("document.activeElement.querySelector('.panes') !== null")
        page.wait_for_function("(() => { const r = document.activeElement.getBoundingClientRect();"
                               " return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth; })()")
        page.keyboard.press("ArrowUp")
        assert page.evaluate(FOCUSED) == "row=row098,col=col049"
        page.keyboard.press("Home")
        assert page.evaluate(FOCUSED) == "row=row098,col=col000"
        assert page.evaluate("document.activeElement.querySelector('.panes') !== null")
        page.keyboard.press("Enter")
        page.wait_for_selector("#viewer[open]")
        assert page.evaluate("document.querySelector('#viewer .viewer-head .key').textContent") == "row=row098,col=col000"
        page.keyboard.press("Escape")
        assert page.evaluate(BIG_FILLED) < 1000 and page.evaluate(BIG_NODES) < 5000 * 4
        assert o.errors == []


def test_a_cards_billed_attempts_other_than_its_take_are_worded_by_what_they_were(browser: Any, tmp_path: Path) -> None:
    """A job's charge for an attempt that left it no video reads as what that attempt was and the run its charge
    counts for: an attempt sent again since ("an expired attempt, run 1"), or a re-render after the take kept ("a
    cancelled re-render, run 2"), with "a" or "an" as the word wants; two alike are counted."""
    report = report_of(tmp_path)
    cases = {
        "style=anime,seed=1": ([["expired", 1, 0]], 350_000, "$0.35 (+$0.35 for an expired attempt, run 1)",
                               " sent again"),
        "style=anime,seed=2": ([["cancelled", 2, 1]], 175_000, "$0.35 (+$0.175 for a cancelled re-render, run 2)",
                               ", the earlier video kept"),
        "style=anime,seed=3": ([["failed", 1, 0], ["failed", 2, 0]], 700_000, "$0.35 (+$0.70 for 2 failed attempts, run 1, run 2)",
                               " sent again"),
    }
    with opened(browser, report) as o:
        page = o.page
        for key, (kinds, cost, _, _) in cases.items():
            page.evaluate("([key, kinds, cost]) => { const j = gridrun.data.items.find((i) => i.key === key).jobs[0];"
                          " j.cost = 350000; j.xa = cost; j.xn = kinds.length; j.xk = kinds; }", [key, kinds, cost])
        page.evaluate("gridrun.update(false)")
        for key, (_, _, text, after) in cases.items():
            cost_el = page.locator(f'.card[data-key="{key}"] .cost')
            assert cost_el.text_content().startswith(text), cost_el.text_content()
            assert cost_el.get_attribute("title").endswith(text.split(" (", 1)[1][:-1] + after), cost_el.get_attribute("title")
        assert o.errors == []


GROUP_DRAWN = "(g) => g.querySelector('.cell').checkVisibility({ contentVisibilityAuto: true })"
CENTER_HITS = ("(sel) => { const c = document.querySelector(sel); const r = c.getBoundingClientRect();"
               " return c.contains(document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2)); }")


def test_grids_far_from_the_view_are_not_drawn_and_keep_their_place_and_width(browser: Any, tmp_path: Path) -> None:
    """Twelve grids of 4 × 30 cards, each wider than the window: those far from the view are not drawn, yet each
    takes the size it has drawn (the page does not move as they are drawn), a drawn one shows its last column
    whole, the keys reach the last card, and after a change of the cells' size a grid not drawn takes the new size."""
    jobs = [dict(j, state="planned", prompt="a red fox running through fresh snow")
            for j in big_jobs(("look", "cam", "seed"), (12, 4, 30))]  # cards alike: a grid's size is its shape's
    report = report_of(tmp_path, jobs, axes=("look", "cam", "seed"))
    with opened(browser, report, width=1400, height=900, fragment="x=seed&y=cam") as o:
        page = o.page
        groups = page.locator("#grid > .group")
        assert groups.count() == 12
        page.wait_for_function(f"({GROUP_DRAWN})(document.querySelector('#grid > .group'))")
        assert page.evaluate(f"({GROUP_DRAWN})(document.querySelector('#grid > .group:last-child'))") is False
        # the grid's width, not the page's: its last column is drawn, not cut off
        box = page.evaluate("(() => { const g = document.querySelector('#grid > .group'); const r = g.getBoundingClientRect();"
                            " const q = g.querySelector('.grid').getBoundingClientRect();"
                            " return [r.left, r.right, q.left, q.right, document.documentElement.scrollWidth]; })()")
        assert box[0] <= box[2] and box[1] >= box[3] and box[3] > 1400 * 3, box
        assert box[4] >= box[3], box
        last_col = '.card[data-key="look=look000,cam=cam003,seed=seed029"]'
        page.evaluate(f"document.querySelector('{last_col}').scrollIntoView({{ block: 'center', inline: 'center' }})")
        page.wait_for_timeout(100)
        assert page.evaluate(CENTER_HITS, last_col)
        page.evaluate("window.scrollTo(0, 0)")
        # a grid never drawn is as large as one of its shape drawn with its cards filled, and so it is once drawn:
        # the page does not move as it is scrolled to
        page.wait_for_timeout(500)
        heights = page.evaluate("Array.from(document.querySelectorAll('#grid > .group'), (g) => g.getBoundingClientRect().height)")
        assert abs(heights[-1] - heights[0]) <= 2, heights
        page.evaluate("document.querySelector('#grid > .group:last-child').scrollIntoView()")
        page.wait_for_function("document.querySelector('#grid > .group:last-child .card .panes') !== null")
        page.wait_for_timeout(300)
        drawn = page.evaluate("document.querySelector('#grid > .group:last-child').getBoundingClientRect().height")
        assert abs(drawn - heights[-1]) <= 4, (drawn, heights)
        # the keys into a grid not drawn: Tab from the grid above, then Ctrl+End to its last card, in view
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(100)
        assert page.evaluate(f"({GROUP_DRAWN})(document.querySelectorAll('#grid > .group')[10])") is False
        page.evaluate("document.querySelector('.card[data-key=\"look=look010,cam=cam003,seed=seed029\"]').focus()")
        page.keyboard.press("Tab")
        assert page.evaluate(FOCUSED) == "look=look011,cam=cam000,seed=seed000"
        page.keyboard.press("Control+End")
        assert page.evaluate(FOCUSED) == "look=look011,cam=cam003,seed=seed029"
        page.wait_for_timeout(300)
        assert page.evaluate(CENTER_HITS, ".card:focus")
        page.keyboard.press("Home")
        assert page.evaluate(FOCUSED) == "look=look011,cam=cam003,seed=seed000"
        page.wait_for_timeout(300)
        assert page.evaluate(CENTER_HITS, ".card:focus")
        # bigger cells: a grid not drawn since takes the new size (that of the grids drawn, all alike), not its last
        page.evaluate("window.scrollTo(0, 0)")
        page.evaluate("document.activeElement.blur()")
        page.wait_for_timeout(200)
        small = page.evaluate("document.querySelector('#grid > .group:last-child').getBoundingClientRect().height")
        page.evaluate("(() => { const s = document.getElementById('ctl-size'); s.value = '320';"
                      " s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); })()")
        page.wait_for_timeout(300)
        sizes = page.evaluate("Array.from(document.querySelectorAll('#grid > .group'), (g) => g.getBoundingClientRect().height)")
        assert page.evaluate(f"({GROUP_DRAWN})(document.querySelector('#grid > .group:last-child'))") is False
        assert sizes[-1] > small * 1.2 and abs(sizes[-1] - sizes[0]) <= 0.03 * sizes[0], (small, sizes)
        assert o.errors == []
