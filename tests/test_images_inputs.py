"""Local input images as a run and a plan meet them: a file that is no longer a regular file is refused unread,
a done job whose image has since been moved away does not block the plan, and a bad image of a data file is
named at its line there."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from execkit import sim_provider, stats, write_manifest

from runner import api

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
FOX = PNG.replace(b"\x00" * 32, b"fox".ljust(32, b"\x00"))
MOON = PNG.replace(b"\x00" * 32, b"moon".ljust(32, b"\x00"))

fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def manifest(tmp_path: Path, pics: list[str], **extra: Any) -> Path:
    (tmp_path / "fox.png").write_bytes(FOX)
    (tmp_path / "moon.png").write_bytes(MOON)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0},
                       run={"concurrency": 1},
                       extra={"params": {"prompt": "a fox {{ seed }}", "quality": "360p", "duration": 5,
                                         "input_reference": "{{ pic }}"}, **extra})
    m.write_text(m.read_text().replace("matrix:\n", f"matrix:\n  pic: [{', '.join(pics)}]\n")
                 .replace("{{ style }}/seed-{{ seed }}.mp4", "{{ pic }}.mp4"))
    return m


def _unblock(path: Path) -> None:
    """Open the pipe at `path` for writing, and close it, so that a reader waiting for a writer goes on."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@fifo
def test_an_image_replaced_by_a_named_pipe_after_the_plan_is_refused_unread(tmp_path: Path) -> None:
    """A tool that streams a file into place leaves a named pipe where fox.png was: its job is left planned with
    an error saying what the file is now, the pipe is never opened to wait for a writer, and the other job is sent
    and done: the run ends."""
    m = manifest(tmp_path, ["fox.png", "moon.png"])
    p = api.plan(m)
    fox = next(j for j in p.jobs if "fox" in j.key)
    (tmp_path / "fox.png").unlink()
    os.mkfifo(tmp_path / "fox.png")
    prov = sim_provider(m)
    out: dict[str, Any] = {}

    def run() -> None:
        out["result"] = api.run(p, provider=prov, report=False)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)
    if worker.is_alive():  # it waits on the pipe: let it go on, and fail
        _unblock(tmp_path / "fox.png")
        worker.join(30)
        pytest.fail("the run waited for a writer of the named pipe")
    result = out["result"]
    assert stats(prov)["creates"] == 1 and result.stats.counts == {**result.stats.counts, "done": 1, "planned": 1}
    left = {j.key: j for j in api.status(m).jobs}[fox.key]
    assert left.state == "planned" and left.provider_id is None, left
    path = (tmp_path / "fox.png").resolve()
    assert (left.error or "").startswith(f"not sent: input_reference: the input image {path} cannot be read since "
                                         "the plan: it is a named pipe, not a regular file holding an image"), left


@fifo
def test_the_plan_refuses_a_named_pipe_without_opening_it_to_wait(tmp_path: Path) -> None:
    """An image that is a named pipe from the start is named as such by the plan, and no digest of it is read."""
    m = manifest(tmp_path, ["fox.png"])
    (tmp_path / "fox.png").unlink()
    os.mkfifo(tmp_path / "fox.png")
    with pytest.raises(api.ManifestError) as caught:
        api.plan(m)
    assert "input image 'fox.png' is a named pipe, not a regular file holding an image" in str(caught.value)


@fifo
def test_a_regular_file_check_does_not_wait_on_a_pipe(tmp_path: Path) -> None:
    """`open_regular` refuses a pipe with no writer at once (the open itself would wait for one)."""
    from runner import images

    os.mkfifo(tmp_path / "p.png")
    out: dict[str, Any] = {}

    def check() -> None:
        try:
            images.read_as_planned(str(tmp_path / "p.png"), "0" * 64)
        except OSError as exc:
            out["error"] = exc

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():
        _unblock(tmp_path / "p.png")
        worker.join(30)
        pytest.fail("reading the image waited for a writer of the named pipe")
    assert isinstance(out.get("error"), images.NotRegular) and out["error"].what.startswith("is a named pipe")


def test_a_done_jobs_image_moved_away_does_not_block_the_plan(tmp_path: Path) -> None:
    """fox.png's job is done, then the file is moved to cold storage and a new row added: the plan is made, the
    done job found done by the digest its run recorded (its hash as before), a warning naming it and its video
    kept; the run sends the new job alone. A job still to send needs its image: a changed prompt for the gone
    image is the error "not found" again."""
    m = manifest(tmp_path, ["fox.png", "moon.png"])
    prov = sim_provider(m)
    first = api.run(m, provider=prov, report=False)
    assert first.exit_code == 0
    done = {j.key: j.hash for j in api.plan(m).jobs}
    (tmp_path / "fox.png").unlink()
    (tmp_path / "owl.png").write_bytes(FOX.replace(b"fox", b"owl"))
    m.write_text(m.read_text().replace("[fox.png, moon.png]", "[fox.png, moon.png, owl.png]"))
    p = api.plan(m)
    assert {j.key: j.hash for j in p.jobs if j.key in done} == done
    said = [str(w) for w in p.warnings if "not found" in str(w)]
    assert len(said) == 1 and "input image 'fox.png' not found" in said[0] and "pic=fox.png" in said[0] \
        and "is done, its video kept" in said[0], said
    d = api.diff(p)
    assert d is not None and (d.new, d.cached) == (1, 2), d
    again = api.run(m, provider=prov, report=False)
    assert again.exit_code == 0 and stats(prov)["creates"] == 3
    m.write_text(m.read_text().replace("a fox {{ seed }}", "a fox at dusk {{ seed }}"))
    with pytest.raises((api.ManifestError, api.ManifestErrors)) as caught:
        api.plan(m)
    assert "input image 'fox.png' not found" in str(caught.value), str(caught.value)


def _errors(m: Path) -> list[str]:
    with pytest.raises((api.ManifestError, api.ManifestErrors)) as caught:
        api.plan(m)
    exc = caught.value
    return [str(e) for e in getattr(exc, "errors", [exc])]


def _grid(tmp_path: Path, matrix: str) -> Path:
    (tmp_path / "fox.png").write_bytes(FOX)
    (tmp_path / "cut.png").write_bytes(FOX[:20])
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: g\nprovider: sim\nmodel: pixverse-v5.6\n"
                 "params:\n  prompt: a fox\n  quality: 360p\n  duration: 5\n"
                 f"  input_reference: \"{{{{ shot.image }}}}\"\nmatrix:\n{matrix}"
                 "output: \"{{ hash }}.mp4\"\n")
    return m


def test_a_bad_image_of_a_csv_row_is_named_at_that_row(tmp_path: Path) -> None:
    """Row 3 of images.csv names a PNG cut short, row 4 one not there, row 5 an empty cell: each error says its
    row, as other values a template makes of a data file's row do."""
    (tmp_path / "images.csv").write_text("id,image\ns0,fox.png\ns1,cut.png\ns2,nope.png\ns3,\n", encoding="utf-8")
    errors = [e.replace(f"{tmp_path}/", "") for e in _errors(_grid(tmp_path, "  shot: {file: images.csv}\n"))]
    assert len(errors) == 3, errors
    assert "input image 'cut.png' is cut short" in errors[0] and "(from images.csv:3)" in errors[0], errors
    assert "input image 'nope.png' not found" in errors[1] and "(from images.csv:4)" in errors[1], errors
    assert "input image '' is empty" in errors[2] and "(from images.csv:5)" in errors[2], errors


def test_a_bad_image_of_an_axis_read_from_a_list_file_is_named_at_its_line(tmp_path: Path) -> None:
    """`matrix: {input_reference: {file: list.txt}}`: the bad image of line 2 is named at list.txt:2, the axis's
    item [1]; one of a list in the manifest at its item too."""
    (tmp_path / "fox.png").write_bytes(FOX)
    (tmp_path / "cut.png").write_bytes(FOX[:20])
    (tmp_path / "list.txt").write_text("fox.png\ncut.png\n", encoding="utf-8")
    m = tmp_path / "m.yaml"
    head = ("version: 1\nname: g\nprovider: sim\nmodel: pixverse-v5.6\n"
            "params:\n  prompt: a fox\n  quality: 360p\n  duration: 5\noutput: \"{{ hash }}.mp4\"\nmatrix:\n")
    m.write_text(head + "  input_reference: {file: list.txt}\n")
    [error] = _errors(m)
    assert error.startswith(f"{tmp_path / 'list.txt'}:2:1: matrix.input_reference[1]: input image 'cut.png' is cut "
                            "short"), error
    m.write_text(head + "  input_reference: [fox.png, cut.png]\n")
    [error] = _errors(m)
    assert ": matrix.input_reference[1]: input image 'cut.png' is cut short" in error, error


@pytest.mark.parametrize(("cell", "hint"), [
    (" imgs/fox.png ", "the value has white space before or after it, and 'imgs/fox.png' is there"),
    ("imgs\\fox.png", "'\\' is no folder separator here: did you mean 'imgs/fox.png'?"),
    ("imgs/FOX.PNG", "'fox.png' is there, the same name but for letter case"),
    ("imgs/gone.png", "imgs/gone.png is a link to nowhere.png, which is not there"),
    ("~/imgs/fox.png", ("~ is not expanded: it is no home folder here, and paths are relative to the manifest's "
                        "folder; write the absolute path (")),
    ("~root/imgs/fox.png", ("~root is not expanded: it is not root's home folder here, and paths are relative to "
                            f"the manifest's folder; write the absolute path ({os.path.expanduser('~root')}/imgs/")),
])
def test_an_image_not_found_is_given_the_near_miss_it_most_likely_is(tmp_path: Path, cell: str, hint: str) -> None:
    """The slips of a list made in a spreadsheet or on another system: the error says what is there."""
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "fox.png").write_bytes(FOX)
    (tmp_path / "imgs" / "gone.png").symlink_to("nowhere.png")
    m = _grid(tmp_path, "  shot: {file: images.csv}\n")
    (tmp_path / "images.csv").write_text(f'id,image\ns0,"{cell}"\n', encoding="utf-8")
    [error] = _errors(m)
    assert "not found" in error and hint in error, error


def test_force_does_not_price_a_done_job_whose_image_was_moved_away(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan --force` says what `run --force` does with a done job whose input image was moved away: it is not
    rendered again (nothing to send it with), named with the path looked for, not priced among the jobs sent; the
    run leaves it done without suggesting `--force --resume`, which could not send it either."""
    from runner.cli import main

    m = manifest(tmp_path, ["fox.png", "moon.png"])
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    (tmp_path / "fox.png").unlink()
    looked = str(tmp_path / "fox.png")

    d = api.diff(api.plan(m), force=True)
    assert d is not None
    fox, moon = (j for j in api.plan(m).jobs)
    assert "not rendered again" in d.reasons[fox.key] and looked in d.reasons[fox.key], d.reasons
    assert not d.sends(fox.key) and d.sends(moon.key) and d.forced == 1, d
    capsys.readouterr()
    assert main(["plan", str(m), "--force", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    status = {j["key"]: j["status"] for j in out["jobs"]}
    assert "not rendered again" in status[fox.key] and looked in status[fox.key], status
    assert status[moon.key] == "forced"
    assert out["against_state"]["to_submit"] == 1 and out["against_state"]["cached"] == 1, out["against_state"]

    assert main(["run", str(m), "--force", "--no-report"]) == 0
    said = capsys.readouterr().err
    assert "--force --resume" not in said and "cannot be read" not in said, said
    assert "spent $0.35 " in said, said  # moon.png's job alone sent again
    assert {j.key: j.state for j in api.status(m).jobs} == {fox.key: "done", moon.key: "done"}
    assert api.diff(api.plan(m), force=True, force_resume=True).forced == 0


def test_a_done_jobs_image_moved_away_in_a_project_moved_whole_does_not_block_the_plan(tmp_path: Path) -> None:
    """A project copied whole (its state with it) to another folder, then fox.png moved away there: its done job is
    found by the digest its run recorded under the project's old folder, as at that folder: a warning, not the
    error "not found"."""
    (tmp_path / "a").mkdir()
    m = manifest(tmp_path / "a", ["fox.png", "moon.png"])
    assert api.run(m, provider=sim_provider(m), report=False).exit_code == 0
    done = {j.key: j.hash for j in api.plan(m).jobs}
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
    moved = tmp_path / "b" / m.name
    (tmp_path / "b" / "fox.png").unlink()
    p = api.plan(moved)
    assert {j.key: j.hash for j in p.jobs} == done
    said = [str(w) for w in p.warnings if "not found" in str(w)]
    assert len(said) == 1 and "input image 'fox.png' not found" in said[0] \
        and "is done, its video kept" in said[0], said
    d = api.diff(p)
    assert d is not None and (d.new, d.cached) == (0, 2), d


def test_a_project_moved_whole_compares_its_images_by_their_place_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A project copied whole to another folder (its state with it), then a space added inside its prompt: the
    jobs differ from the last run in white space alone, as they would at the old folder; the input image, the same
    file at the same place in the project, is not said to differ (its old absolute path), in the plan nor in
    `--explain`."""
    from runner.cli import main

    (tmp_path / "a").mkdir()
    m = manifest(tmp_path / "a", ["fox.png", "moon.png"])
    assert api.run(m, provider=sim_provider(m), report=False).exit_code == 0
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
    moved = tmp_path / "b" / m.name
    moved.write_text(moved.read_text().replace("a fox {{ seed }}", "a  fox {{ seed }}"))
    d = api.diff(api.plan(moved))
    assert d is not None and d.new == 2, d
    said = [str(w) for w in d.warnings]
    assert any("2 jobs differ from run 1 only in white space" in w for w in said), said
    assert d.changes and not any("input_reference" in c for c in d.changes.values()), d.changes
    assert all("input_reference" not in e for e in d.earlier.values()), d.earlier
    capsys.readouterr()
    assert main(["plan", str(moved), "--explain"]) == 0
    out = capsys.readouterr().out
    differs = [line for line in out.splitlines() if "differs from run 1:" in line]
    assert len(differs) == 2 and all("params.prompt" in line and "input_reference" not in line for line in differs), out
    assert out.count("(in run 1)") == 2, out  # the prompt's earlier value alone


@pytest.mark.parametrize(("url", "why"), [
    ("https://", "it has no host"),
    ("https:///a.png", "it has no host"),
    ("https://x.com:99999/a.png", "its port, after the host's ':', is not a number from 0 to 65535"),
    ("https://[::1/a.png", "Invalid IPv6 URL"),
    ("https://127.0.0.1/\\0.png", "the control character '\\x00'"),
    ("https://x.com/a b.png", "it holds a space"),
    ("https://x.com/a\\u2028b.png", "the white space character '\\u2028'"),
])
def test_an_image_url_no_request_can_fetch_is_refused_at_its_field(tmp_path: Path, url: str, why: str) -> None:
    """An https image URL without a host, with a port out of range, a control character or white space: the
    provider cannot fetch it, and the create would be billed all the same. Refused as a base URL is, at the
    field, for the input image and the last frame alike; the same URL with a signed query still plans."""
    m = tmp_path / "m.yaml"
    head = "version: 1\nname: g\nprovider: sim\nmodel: pixverse-v5.6\nparams:\n  prompt: a fox\n  quality: 360p\n"
    m.write_text(head + f'  input_reference: "{url}"\noutput: a.mp4\n', encoding="utf-8")
    [error] = _errors(m)
    assert error.startswith(f"{m}:8:3: params.input_reference: input image ") and "is not a URL an image can be " \
           "fetched from: " in error and why in error, error
    m.write_text(head + f'  input_reference: https://x.com/a.png\n  last_frame_image: "{url}"\noutput: a.mp4\n',
                 encoding="utf-8")
    [error] = _errors(m)
    assert error.startswith(f"{m}:9:3: params.last_frame_image: input image ") and why in error, error
    m.write_text(head + "  input_reference: https://x.com:8443/a.png?sig=1#f\noutput: a.mp4\n", encoding="utf-8")
    assert len(api.plan(m).jobs) == 1


def test_an_image_url_no_request_can_fetch_from_a_csv_row_is_named_at_that_row(tmp_path: Path) -> None:
    (tmp_path / "images.csv").write_text("id,image\ns0,fox.png\ns1,https:///b.png\n", encoding="utf-8")
    [error] = [e.replace(f"{tmp_path}/", "") for e in _errors(_grid(tmp_path, "  shot: {file: images.csv}\n"))]
    assert "input image 'https:///b.png' is not a URL an image can be fetched from: it has no host" in error \
        and "(from images.csv:3)" in error, error


def test_an_image_url_with_its_scheme_in_capitals_is_a_url_sent_as_written(tmp_path: Path) -> None:
    """`HTTPS://`, `Https://` (a spreadsheet's autocapitalisation): URL schemes are case-insensitive, so these are
    https URLs, sent as written and checked as URLs, not paths looked for beside the manifest."""
    (tmp_path / "images.csv").write_text("id,image\ns0,HTTPS://x.com/c.png\ns1,Https://x.com/d.png\n",
                                         encoding="utf-8")
    p = api.plan(_grid(tmp_path, "  shot: {file: images.csv}\n"))
    assert sorted(json.dumps(j.params["input_reference"]) for j in p.jobs) == [
        '["HTTPS://x.com/c.png"]', '["Https://x.com/d.png"]']
    (tmp_path / "images.csv").write_text("id,image\ns0,fox.png\ns1,HTTPS:///b.png\n", encoding="utf-8")
    [error] = [e.replace(f"{tmp_path}/", "") for e in _errors(_grid(tmp_path, "  shot: {file: images.csv}\n"))]
    assert "input image 'HTTPS:///b.png' is not a URL an image can be fetched from: it has no host" in error \
        and "(from images.csv:3)" in error, error


@pytest.mark.parametrize("url", ["https://user:IMGPASS99@example.com/x.png?X-Amz-Security-Token=IMGTOKEN99",
                                 "https://user:IMG/PASS99@example.com/x.png", "https://user:IMG#PASS99@example.com/x.png",
                                 "HTTPS://IMGUSER99@example.com/x.png"])
def test_an_image_url_with_a_user_name_or_password_is_refused_without_showing_it(tmp_path: Path, url: str) -> None:
    """As a base URL is: the provider would be handed the password, and the job's key, the output names made from
    it, the report and the exports would hold it. Given in `params` or through an axis, neither the URL nor the key
    that holds it is shown."""
    m = tmp_path / "m.yaml"
    head = "version: 1\nname: g\nprovider: sim\nmodel: pixverse-v5.6\nparams:\n  prompt: a fox\n  quality: 360p\n"
    m.write_text(head + f'  input_reference: "{url}"\noutput: a.mp4\n', encoding="utf-8")
    [error] = _errors(m)
    assert error.startswith(f"{m}:8:3: params.input_reference: an input image URL holds a user name or password"), error
    assert "IMG" not in error and "PASS99" not in error and "example.com" not in error, error
    m.write_text(head + '  input_reference: "{{ img }}"\nmatrix:\n  img: [https://example.com/a.png, "' + url
                 + '"]\noutput: "{{ key }}.mp4"\n', encoding="utf-8")
    [error] = _errors(m)
    assert "an input image URL holds a user name or password" in error, error
    assert "IMG" not in error and "PASS99" not in error and "example.com" not in error, error


def test_a_report_names_local_input_images_by_their_place_in_the_manifests_folder(tmp_path: Path) -> None:
    """The report shows a local input image as the manifest places it (`fox.png`; one outside its folder as
    `../shared/end.png`), never the absolute path of the machine that ran it: the details view and the cards read
    the page data. A project moved whole to another folder, its jobs all cached there, says the same, not the
    old folder's path; what is sent (the request its sidecar records) keeps the absolute path."""
    import re

    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "end.png").write_bytes(MOON)
    (tmp_path / "a").mkdir()
    m = manifest(tmp_path / "a", ["fox.png", "moon.png"])
    m.write_text(m.read_text().replace("  input_reference:", "  last_frame_image: ../shared/end.png\n  input_reference:"))

    def shown(folder: Path) -> tuple[str, dict[str, Any]]:
        page = (folder / "outputs" / "t" / "report.html").read_text()
        found = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', page, re.DOTALL)
        assert found
        return page, json.loads(found[1])

    assert api.run(m, provider=sim_provider(m)).exit_code == 0
    sidecar = json.loads((tmp_path / "a" / "outputs" / "t" / "fox.png.json").read_text())
    assert sidecar["request"]["input_reference"] == [str(tmp_path / "a" / "fox.png")]
    pages = [shown(tmp_path / "a")]
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
    shutil.rmtree(tmp_path / "a")
    moved = tmp_path / "b" / m.name
    assert api.run(moved, provider=sim_provider(moved)).exit_code == 0
    pages.append(shown(tmp_path / "b"))
    for page, data in pages:
        assert data["common"]["last_frame_image"] == "../shared/end.png", data["common"]
        pics = sorted(j["p"]["input_reference"][0] for it in data["items"] for j in it["jobs"] if j)
        assert pics == ["fox.png", "moon.png"], pics
        assert str(tmp_path) not in page


def _beside_project(tmp_path: Path) -> Path:
    """A project in old/proj whose jobs send fox.png and moon.png from its folder and end.png from a folder beside
    it (`../shared/end.png`), run once."""
    (tmp_path / "old" / "shared").mkdir(parents=True)
    (tmp_path / "old" / "shared" / "end.png").write_bytes(MOON)
    (tmp_path / "old" / "proj").mkdir()
    m = manifest(tmp_path / "old" / "proj", ["fox.png", "moon.png"])
    m.write_text(m.read_text().replace("  input_reference:", "  last_frame_image: ../shared/end.png\n  input_reference:"))
    assert api.run(m, provider=sim_provider(m)).exit_code == 0
    return m


def _page_data(page: Path) -> dict[str, Any]:
    import re

    found = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', page.read_text(), re.DOTALL)
    assert found
    return json.loads(found[1])


@pytest.mark.parametrize("how", ["moved", "copied"])
def test_a_project_moved_with_its_sibling_folders_shows_and_compares_an_image_beside_it_as_the_same_file(
    tmp_path: Path, how: str,
) -> None:
    """old/ renamed (or copied) new/: the project and the folder beside it that holds end.png moved together. The
    report of the run there (its jobs cached, holding the old absolute path) shows `../shared/end.png` as the
    manifest writes it, the compare of the two runs finds no pair differing, and a plan after a prompt edit names
    the prompt alone."""
    m = _beside_project(tmp_path)
    if how == "moved":
        (tmp_path / "old").rename(tmp_path / "new")
    else:
        shutil.copytree(tmp_path / "old", tmp_path / "new", symlinks=True)
    moved = tmp_path / "new" / "proj" / m.name
    assert api.run(moved, provider=sim_provider(moved)).exit_code == 0
    data = _page_data(tmp_path / "new" / "proj" / "outputs" / "t" / "report.html")
    assert data["common"]["last_frame_image"] == "../shared/end.png", data["common"]
    compared = _page_data(api.report(moved, compare=(1, 2)))
    assert compared["common"]["last_frame_image"] == "../shared/end.png", compared["common"]
    assert len(compared["items"]) == 2 and not [it for it in compared["items"] if "diff" in it], compared["items"]
    moved.write_text(moved.read_text().replace("a fox {{ seed }}", "a red fox {{ seed }}"))
    d = api.diff(api.plan(moved))
    assert d is not None and d.new == 2 and len(d.changes) == 2, d
    assert all(c.startswith("params.prompt:") and "image" not in c for c in d.changes.values()), d.changes
    assert all(set(e) == {"prompt"} for e in d.earlier.values()), d.earlier


def test_an_image_beside_a_moved_project_that_is_another_file_is_still_said_to_differ(tmp_path: Path) -> None:
    """The project alone moved (old/proj to new/proj), a new/shared/end.png of other content beside it: the plan
    names the image whose content differs. The same with the whole project moved and end.png edited since. An
    image the manifest names by its absolute path, left where it was, is the same file after the move: not said
    to differ."""
    m = _beside_project(tmp_path)
    (tmp_path / "new" / "shared").mkdir(parents=True)
    (tmp_path / "new" / "shared" / "end.png").write_bytes(FOX)
    (tmp_path / "old" / "proj").rename(tmp_path / "new" / "proj")
    moved = tmp_path / "new" / "proj" / m.name
    d = api.diff(api.plan(moved))
    assert d is not None and d.new == 2 and len(d.changes) == 2, d
    print(d.changes)

    # the folder of the first run back, the new one's image made the same as its: then end.png edited in place
    (tmp_path / "new" / "proj").rename(tmp_path / "old" / "proj")
    shutil.rmtree(tmp_path / "new")
    (tmp_path / "old").rename(tmp_path / "new")
    (tmp_path / "new" / "shared" / "end.png").write_bytes(FOX)
    d = api.diff(api.plan(moved))
    assert d is not None and d.new == 2, d
    assert all(c.startswith(f"the same parameters; input image {tmp_path / 'new' / 'shared' / 'end.png'}: its "
                            "content differs from run 1's") for c in d.changes.values()), d.changes

    # an image named by its absolute path, outside the project and left in place, the project moved deeper
    (tmp_path / "new" / "shared" / "end.png").write_bytes(MOON)
    (tmp_path / "far").mkdir()
    (tmp_path / "far" / "end.png").write_bytes(PNG)
    moved.write_text(moved.read_text().replace("../shared/end.png", str(tmp_path / "far" / "end.png")))
    assert api.run(moved, provider=sim_provider(moved)).exit_code == 0
    (tmp_path / "deeper").mkdir()
    (tmp_path / "new").rename(tmp_path / "deeper" / "new")
    again = tmp_path / "deeper" / "new" / "proj" / m.name
    again.write_text(again.read_text().replace("a fox {{ seed }}", "a red fox {{ seed }}"))
    d = api.diff(api.plan(again))
    assert d is not None and d.new == 2 and all(c.startswith("params.prompt:") and "image" not in c
                                                for c in d.changes.values()), d.changes
