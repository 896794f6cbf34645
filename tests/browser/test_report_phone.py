"""The report on a phone (a touch screen, a layout viewport that grows to a page wider than the screen), on
paper, and opened apart from its folder: headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import test_report_browser as base
from demo_state import fox_jobs
from test_report_browser import failed_then_cancelled, opened, report_of

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


def test_on_a_phone_the_heads_stay_in_view_as_a_wide_grid_is_swiped(browser: Any, tmp_path: Path) -> None:
    """A grid of five columns is wider than a 360 px phone: the page stays as wide as the screen (the grid
    scrolls in its own box), so the row heads keep to the screen's left as the grid is swiped sideways, and the
    column heads to the top of the grid as it is swiped up."""
    report = wide_grid(tmp_path)
    with opened(browser, report, width=360, height=740, mobile=True) as o:
        page = o.page
        assert page.evaluate("[innerWidth, document.documentElement.scrollWidth]") == [360, 360]
        assert page.evaluate("document.getElementById('grid').scrollWidth") > 360 + 200
        # down to the grid, then the grid itself sideways and up, as a finger does
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        box = page.evaluate("(() => { const r = document.getElementById('grid').getBoundingClientRect();"
                            " return [r.top, r.bottom]; })()")
        y = (max(box[0], 0) + min(box[1], 740)) / 2
        swipe(page, 330, y, -250, 0)
        swipe(page, 180, y + 100, 0, -200)
        page.wait_for_function("document.getElementById('grid').scrollLeft > 100 && document.getElementById('grid').scrollTop > 50")
        state = page.evaluate("""() => {
            const vv = visualViewport, g = document.getElementById('grid').getBoundingClientRect();
            const inView = (sel) => Array.from(document.querySelectorAll(sel)).map((e) => e.getBoundingClientRect())
              .filter((r) => r.bottom > g.top + 40 && r.top < Math.min(g.bottom, vv.height));
            const rows = inView('.rowh'), cols = Array.from(document.querySelectorAll('.colh'), (e) => e.getBoundingClientRect())
              .filter((r) => r.right > 100 && r.left < vv.width);
            return { vvLeft: vv.offsetLeft, rowLefts: rows.map((r) => r.left), colTops: cols.map((r) => r.top - g.top) }; }""")
        assert state["vvLeft"] == 0, state
        assert state["rowLefts"] and all(abs(x) <= 1 for x in state["rowLefts"]), state
        assert state["colTops"] and all(abs(t) <= 1 for t in state["colTops"]), state
        assert o.errors == []


def test_on_a_phone_players_are_made_for_the_cells_on_screen(browser: Any, tmp_path: Path) -> None:
    """The grid's players are made for the cells near what the screen shows, not for a layout as wide as
    the grid (those within the attach margin of the screen, a little more for rounding); and a phone's page keeps
    fewer players at once than a desktop's."""
    report = wide_grid(tmp_path, columns=10, rows=10)
    with opened(browser, report, width=390, height=800, mobile=True) as o:
        page = o.page
        # down to the grid, as far as the page goes: the screen shows the grid's cells
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_timeout(500)
        counts = page.evaluate("""() => {
            const vv = visualViewport, x0 = vv.offsetLeft, y0 = vv.offsetTop;  // the screen, in the page's window
            const near = Array.from(document.querySelectorAll('#grid .thumb[data-src]')).filter((t) => {
              const r = t.getBoundingClientRect();
              return r.bottom > y0 - 110 && r.top < y0 + vv.height + 110 && r.right > x0 - 60 && r.left < x0 + vv.width + 60; });
            return { videos: document.querySelectorAll('#grid video').length, near: near.length,
                     cap: gridrun.maxVideos }; }""")
        assert 0 < counts["videos"] <= counts["near"] <= 30, counts
        assert counts["cap"] <= 40, counts
    with opened(browser, report, width=1400, height=900) as o:
        assert o.page.evaluate("gridrun.maxVideos") == 160


def test_on_a_phone_a_tap_on_the_backdrop_closes_the_details_and_not_one_inside_them(browser: Any, tmp_path: Path) -> None:
    """The details view closes on a tap outside its box, as a sheet on a phone does; a tap on its table does not."""
    report = report_of(tmp_path)
    with opened(browser, report, width=360, height=740, mobile=True) as o:
        page = o.page
        page.locator(".card").first.tap()
        page.wait_for_selector("#viewer[open]")
        page.locator("#viewer table.attrs tbody th").first.tap()
        assert page.evaluate("document.getElementById('viewer').open")
        box = page.locator("#viewer").bounding_box()
        assert box["y"] > 12, box
        page.touchscreen.tap(180, box["y"] / 2)
        page.wait_for_selector("#viewer", state="hidden")
        assert o.errors == []


def test_on_a_phone_a_tap_shows_what_a_title_says(browser: Any, tmp_path: Path) -> None:
    """A touch screen shows no title: a tap on a header's chip, or on a head's value, shows the title's text
    beside it; a tap elsewhere hides it. The header's chips are reached by the keyboard as well."""
    report = failed_then_cancelled(tmp_path)
    with opened(browser, report, width=360, height=740, mobile=True) as o:
        page = o.page
        chip = page.locator(".compare-summary .chip.differs")
        title = chip.get_attribute("title")
        assert title and not page.locator("#tip").is_visible()
        chip.tap()
        assert page.locator("#tip").is_visible() and page.locator("#tip").text_content() == title
        tip, chip_box = page.locator("#tip").bounding_box(), chip.bounding_box()
        assert tip["x"] >= 0 and tip["x"] + tip["width"] <= 360 and tip["y"] >= chip_box["y"] + chip_box["height"], (tip, chip_box)
        page.locator("h1").tap()
        assert not page.locator("#tip").is_visible()
        value = page.locator(".colh .axis-val").first
        value.tap()
        assert page.locator("#tip").text_content() == value.get_attribute("title")
        value.tap()
        assert not page.locator("#tip").is_visible()
        assert chip.get_attribute("tabindex") == "0"
        chip.focus()
        page.keyboard.press("Enter")
        assert page.locator("#tip").text_content() == title
        page.keyboard.press("Escape")
        assert not page.locator("#tip").is_visible()
        # a tip goes once the focus leaves its chip: it would otherwise stay under it, saying another's title
        page.keyboard.press("Enter")
        assert page.locator("#tip").is_visible()
        page.keyboard.press("Tab")
        assert not page.locator("#tip").is_visible() and chip.get_attribute("aria-describedby") is None
        assert o.errors == []


@pytest.mark.parametrize("mobile", [True, False], ids=["phone", "narrow window"])
def test_on_a_narrow_screen_a_long_parameter_name_does_not_widen_the_details_labels(
        browser: Any, tmp_path: Path, mobile: bool) -> None:
    """A parameter's name of one long word (`generate_audio_switch`, every PixVerse job's) wraps after its
    underscores, so the labels keep their narrow column and the values the width."""
    report = report_of(tmp_path)
    with opened(browser, report, width=360, height=740, mobile=mobile) as o:
        page = o.page
        page.evaluate("() => { gridrun.data.common.generate_audio_switch = false;"
                      " gridrun.data.paramOrder.push('generate_audio_switch'); }")
        page.locator(".card").first.click()
        page.wait_for_selector("#viewer[open]")
        name = page.locator("#viewer table.attrs tbody th", has_text="generate_audio_switch")
        assert name.text_content() == "generate_audio_switch"
        label = page.locator("#viewer table.attrs tbody th", has_text="status").bounding_box()
        assert label is not None and label["width"] <= 100, label  # 161 px were it not to wrap
        assert o.errors == []


def test_on_a_touch_screen_the_controls_are_big_enough_to_tap(browser: Any, tmp_path: Path) -> None:
    """Every button, select and toolbar label of the page, and the details view's buttons, are at least 24 px
    each way on a touch screen (WCAG's minimum target)."""
    report = report_of(tmp_path)
    small = """(sel) => Array.from(document.querySelectorAll(sel)).map((e) => e.getBoundingClientRect())
        .filter((r) => r.width && (r.width < 24 || r.height < 24)).map((r) => [r.width, r.height])"""
    with opened(browser, report, width=390, height=844, mobile=True) as o:
        page = o.page
        assert page.evaluate(small, "button, select, .toolbar label") == []
        page.locator(".card").first.tap()
        page.wait_for_selector("#viewer[open]")
        assert page.evaluate(small, "#viewer button") == []
        assert o.errors == []


@pytest.mark.parametrize("alone", [True, False], ids=["the page alone", "the whole folder"])
def test_a_page_opened_apart_from_its_folder_says_so_once_at_its_top(browser: Any, tmp_path: Path, alone: bool) -> None:
    """report.html copied without its folder (mailed, opened from inside a zip) finds none of its videos: the
    page says once, at its top, that it was opened apart from its folder, and each cell that the videos are not
    beside it; the whole folder copied finds them and says nothing of the kind."""
    report = report_of(tmp_path / "made")
    copy = tmp_path / "copy"
    if alone:
        copy.mkdir()
        shutil.copy(report, copy / report.name)
    else:
        shutil.copytree(report.parent, copy)
    with opened(browser, copy / report.name, from_disk=True) as o:
        page = o.page
        if alone:
            page.wait_for_selector(".away-note")
            assert page.locator(".away-note").count() == 1
            assert "opened apart from its output folder" in page.locator("header.top .away-note").text_content()
            page.wait_for_selector(".thumb.broken")
            assert page.evaluate("getComputedStyle(document.querySelector('.thumb.broken'), '::after').content") == \
                '"not found beside this page"'
            # and so do the cards' names: the files are not missing, the page is elsewhere
            page.wait_for_function("document.querySelectorAll('.thumb.broken').length === 12")
            names = page.eval_on_selector_all(".card", "cs => cs.map((c) => c.getAttribute('aria-label'))")
            assert all(", not found beside this page, " in n and "missing" not in n for n in names), names
        else:
            page.wait_for_function("Array.from(document.querySelectorAll('#grid video')).some((v) => v.readyState >= 1)")
            assert page.locator(".away-note").count() == 0 and page.locator(".thumb.broken").count() == 0
            assert o.errors == []


def test_on_a_phone_the_grid_starts_on_the_first_screen_the_other_figures_a_tap_away(browser: Any, tmp_path: Path) -> None:
    """On a narrow screen the header shows what each run paid and its budget, the other figures a tap away, so
    that a compare's first cards are on the first screen; on paper and on a wide screen every figure shows."""
    report = failed_then_cancelled(tmp_path)
    with opened(browser, report, width=390, height=844, mobile=True) as o:
        page = o.page
        top = page.evaluate("document.querySelector('.card').getBoundingClientRect().top")
        assert top < page.evaluate("visualViewport.height") - 100, top
        paid = page.locator("header.top dt", has_text=re.compile(r"^this run (paid|spent \(simulated\))$"))
        plan = page.locator("header.top dt", has_text="plan estimate")
        assert paid.count() == plan.count() == 2
        assert paid.first.is_visible() and paid.last.is_visible() and not plan.first.is_visible()
        more = page.locator(".money-more").first
        assert more.get_attribute("aria-expanded") == "false"
        more.tap()
        assert plan.first.is_visible() and not plan.last.is_visible()
        assert more.get_attribute("aria-expanded") == "true"
        more.tap()
        assert not plan.first.is_visible()
        page.emulate_media(media="print")
        assert plan.first.is_visible() and plan.last.is_visible() and not more.is_visible()
        assert o.errors == []
    with opened(browser, report, width=1400, height=900) as o:
        assert o.page.locator("header.top dt", has_text="plan estimate").first.is_visible()
        assert not o.page.locator(".money-more").first.is_visible()


def test_on_a_phone_the_figures_opened_stay_open_and_focused_through_the_live_reload(browser: Any, tmp_path: Path) -> None:
    """"all figures" opened on a narrow screen stays open as the live page reloads (the address keeps it, as it
    keeps the view), and its button keeps the keyboard focus; folded again, it stays folded."""
    report = report_of(tmp_path, fox_jobs({("anime", 1): "running"}), end_status=None)
    with opened(browser, report, width=390, height=844, mobile=True) as o:
        page = o.page
        more = page.locator(".money-more")
        plan = page.locator("header.top dt", has_text="plan estimate")
        assert more.get_attribute("aria-expanded") == "false" and not plan.is_visible()
        more.focus()
        page.keyboard.press("Enter")
        assert more.get_attribute("aria-expanded") == "true" and plan.is_visible()
        for expanded in ("true", "false"):
            with page.expect_navigation():
                page.evaluate("gridrun.reload()")  # what the page does while the run goes on
            page.wait_for_function("window.gridrun !== undefined")
            assert more.get_attribute("aria-expanded") == expanded and plan.is_visible() is (expanded == "true")
            assert more.text_content() == ("fewer figures ▴" if expanded == "true" else "all figures ▾")
            assert page.evaluate("document.activeElement.className") == "money-more"
            page.keyboard.press("Enter")  # folded again
        assert o.errors == []


def test_on_a_phone_the_live_reload_keeps_the_card_the_user_was_looking_at_in_the_grids_box(
        browser: Any, tmp_path: Path) -> None:
    """On a touch screen the grid scrolls in its own box: the live page's reload comes back to the card in view
    there, at the same place on the screen, the box scrolled sideways and down as it was."""
    jobs = [{"values": {"color": c, "shot": s}, "state": "planned"} for c in range(10) for s in range(10)]
    report = report_of(tmp_path, jobs, axes=("color", "shot"), end_status=None)
    first_in_box = """(() => { const g = document.getElementById('grid').getBoundingClientRect();
      for (const c of document.querySelectorAll('.card')) { const r = c.getBoundingClientRect();
        if (r.top >= g.top + 40 && r.bottom < g.bottom && r.left >= g.left + 100 && r.right < g.right)
          return [c.dataset.key, Math.round(r.left), Math.round(r.top)]; }
      return null; })()"""
    with opened(browser, report, width=390, height=844, mobile=True) as o:
        page = o.page
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.evaluate("document.getElementById('grid').scrollTo(450, 500)")
        page.wait_for_function("document.getElementById('grid').scrollTop >= 400")
        key, left, top = page.evaluate(first_in_box)
        assert key != "color=0,shot=0"
        with page.expect_navigation():
            page.evaluate("gridrun.reload()")  # what the page does while the run goes on
        page.wait_for_function("window.gridrun !== undefined")
        page.wait_for_function("document.getElementById('grid').scrollTop > 0")
        page.wait_for_timeout(300)
        card = page.locator(f'.card[data-key="{key}"]').bounding_box()
        assert abs(card["x"] - left) <= 2 and abs(card["y"] - top) <= 2, (key, left, top, card)
        assert o.errors == []


def test_on_a_phone_grids_of_grids_far_down_the_box_are_not_drawn_and_a_drawn_one_is_not_cut(
        browser: Any, tmp_path: Path) -> None:
    """Grids of grids on a phone, each wider than the screen, in the grid's own box: those far down the box are
    not drawn, the one in view is as wide as its grid (its last column drawn, not cut off at the screen's width),
    and one scrolled to in the box is drawn there at the place it had."""
    jobs = [{"values": {"look": g, "color": c, "shot": s}, "state": "planned"}
            for g in range(8) for c in range(3) for s in range(5)]
    report = report_of(tmp_path, jobs, axes=("look", "color", "shot"))
    with opened(browser, report, width=360, height=740, mobile=True, fragment="x=shot&y=color") as o:
        page = o.page
        drawn = "(g) => g.querySelector('.cell').checkVisibility({ contentVisibilityAuto: true })"
        assert page.evaluate("document.querySelectorAll('#grid > .group').length") == 8
        page.wait_for_function(f"({drawn})(document.querySelector('#grid > .group'))")
        assert page.evaluate(f"({drawn})(document.querySelector('#grid > .group:last-child'))") is False
        box = page.evaluate("(() => { const g = document.querySelector('#grid > .group'); const r = g.getBoundingClientRect();"
                            " const q = g.querySelector('.grid').getBoundingClientRect(); return [r.right, q.right]; })()")
        assert box[0] >= box[1] > 360 + 200, box
        last_col = '.card[data-key="look=0,color=0,shot=4"]'
        page.evaluate(f"document.querySelector('{last_col}').scrollIntoView({{ block: 'center', inline: 'center' }})")
        page.wait_for_timeout(100)
        assert page.evaluate(base.CENTER_HITS, last_col)
        top = page.evaluate("document.querySelector('#grid > .group:last-child').getBoundingClientRect().top"
                            " + document.getElementById('grid').scrollTop + scrollY")
        page.evaluate("document.querySelector('#grid > .group:last-child').scrollIntoView()")
        page.wait_for_function(f"({drawn})(document.querySelector('#grid > .group:last-child'))")
        page.wait_for_function("document.querySelector('#grid > .group:last-child .card .panes') !== null")
        page.wait_for_timeout(300)
        assert abs(page.evaluate("document.querySelector('#grid > .group:last-child').getBoundingClientRect().top"
                                 " + document.getElementById('grid').scrollTop + scrollY") - top) <= 2
        first = '.card[data-key="look=7,color=2,shot=0"]'
        page.evaluate(f"document.querySelector('{first}').scrollIntoView({{ block: 'center', inline: 'center' }})")
        page.wait_for_timeout(100)
        assert page.evaluate(base.CENTER_HITS, first)
        assert o.errors == []
