"""Where the API key goes: only to a host the user chose (the environment's base URL, the provider's own API, or
this machine); a manifest or a capabilities file it names cannot move it elsewhere."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest

from runner import api
from runner.cli import main
from runner.errors import ManifestError

HEAD = "version: 1\nname: fox\nprovider: lumenfall\nmodel: pixverse-v5.6\n"
TAIL = "params: {prompt: a fox, quality: 540p, duration: 5}\noutput: a.mp4\n"


def manifest(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + textwrap.dedent(extra) + TAIL, encoding="utf-8")
    return path


def test_a_manifest_base_url_on_another_host_is_refused_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                                     ) -> None:
    m = manifest(tmp_path, "base_url: https://evil.example/v1\n")
    for command in ("validate", "plan"):
        assert main([command, str(m)]) == 2
        err = capsys.readouterr().err
        assert f"{m}:5:" in err and "base_url" in err and "evil.example" in err
        assert "LUMENFALL_API_KEY" in err and "LUMENFALL_BASE_URL" in err
    with pytest.raises(ManifestError):
        api.run(m)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1", "http://localhost:9/v1", "http://[::1]:9/v1",
                                 "https://api.lumenfall.ai/openai/v1"])
def test_a_manifest_base_url_of_this_machine_or_the_provider_is_accepted(tmp_path: Path, url: str) -> None:
    p = api.plan(manifest(tmp_path, f"base_url: '{url}'\n"))
    assert p.endpoint[0] == url.rstrip("/")
    assert "base_url" in p.endpoint[1]


def test_a_capabilities_file_cannot_move_the_key(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text("provider: lumenfall\nbase_url: https://evil.example/v1\n", encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        api.plan(manifest(tmp_path, "capabilities: [caps.yaml]\n"))
    assert info.value.line == 2 and info.value.field == "base_url" and "evil.example" in str(info.value)


def test_a_capabilities_file_cannot_choose_the_key_variable(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text("provider: lumenfall\napi_key_env: AWS_SECRET_ACCESS_KEY\n", encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        api.plan(manifest(tmp_path, "capabilities: [caps.yaml]\n"))
    assert info.value.line == 2 and info.value.field == "api_key_env"


def test_the_environment_base_url_wins_over_the_manifest_and_plan_shows_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LUMENFALL_BASE_URL", "https://gw.example/v1")
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-test-key")
    m = manifest(tmp_path, "base_url: http://127.0.0.1:9/v1\n")
    assert main(["plan", str(m)]) == 0
    assert "endpoint: https://gw.example/v1 (from LUMENFALL_BASE_URL in the environment)" in capsys.readouterr().out
    assert main(["plan", str(m), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["endpoint"]
    assert shown == {"url": "https://gw.example/v1", "from": "LUMENFALL_BASE_URL in the environment"}
    prov = api._provider(api.plan(m))
    assert str(prov.client().base_url).startswith("https://gw.example/v1")


def test_plan_shows_the_default_endpoint(tmp_path: Path) -> None:
    p = api.plan(manifest(tmp_path))
    assert p.endpoint == ("https://api.lumenfall.ai/v1", "gridrun's capability data (the provider's own API)")
    assert isinstance(httpx.URL(p.endpoint[0]), httpx.URL)


@pytest.mark.parametrize("key", ["sk-SECRET123-\u00e9-x", "sk-SECRET123\nInjected: 1", "sk-SECRET\x07123"])
def test_a_key_with_a_character_no_header_carries_is_refused_before_any_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str) -> None:
    monkeypatch.setenv("LUMENFALL_API_KEY", key)
    m = manifest(tmp_path, "base_url: http://127.0.0.1:9/v1\n")
    assert main(["run", str(m), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "LUMENFALL_API_KEY holds" in err and "position" in err and "Traceback" not in err
    assert "SECRET" not in err
    assert not (tmp_path / ".gridrun" / "state.db").exists()


def test_a_base_url_with_credentials_is_refused_without_showing_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-x-key")
    monkeypatch.setenv("LUMENFALL_BASE_URL", "http://user:sk-PASSWORD99@127.0.0.1:9/v1")
    m = manifest(tmp_path)
    assert main(["run", str(m), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "LUMENFALL_BASE_URL" in err and "user name or password" in err and "PASSWORD99" not in err
    assert not (tmp_path / ".gridrun" / "state.db").exists()
    monkeypatch.delenv("LUMENFALL_BASE_URL")
    m = manifest(tmp_path, "base_url: http://user:sk-PASSWORD99@127.0.0.1:9/v1\n")
    assert main(["validate", str(m)]) == 2
    err = capsys.readouterr().err
    assert f"{m}:5:" in err and "user name or password" in err and "PASSWORD99" not in err


@pytest.mark.parametrize("url", ["https://assets.example.com:8443/fox@2x.png", "http://127.0.0.1:8000/@team/v1",
                                 "http://127.0.0.1:8000/v1?owner=a@b.com", "https://img.example.com:443/a.png?mail=me@x.io",
                                 "https://host:8443", "https://host:8443#a@b"])
def test_an_at_sign_after_a_port_in_a_path_or_query_is_no_password(url: str) -> None:
    """A port after the host's ':' (digits, then '/', '?', '#' or the end) is no password's start: an '@' further on
    is in the path, query or fragment."""
    from runner.providers.capabilities import has_credentials

    assert not has_credentials(url)
    assert has_credentials(url.replace("://", "://user:pw@", 1))


@pytest.mark.parametrize("password", ["sk-PASS/WORD99", "sk-PASS#WORD99", "sk-PASS?WORD99", "sk-PASS/WORD99:9",
                                      "12sk/PASSWORD99"])
def test_a_base_url_whose_password_holds_a_slash_hash_or_question_mark_is_refused_without_showing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str) -> None:
    """Not percent-encoded, a '/', '#' or '?' ends the host early for the parser, which then finds no '@' in it: the
    URL was shown whole, or its start with the parser's words about the "port" (the password's start)."""
    url = f"http://user:{password}@127.0.0.1:9/v1"
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-x-key")
    monkeypatch.setenv("LUMENFALL_BASE_URL", url)
    m = manifest(tmp_path)
    for command in ("plan", "run"):
        assert main([command, str(m), "--no-report"] if command == "run" else [command, str(m)]) == 2
        err = capsys.readouterr().err
        assert "LUMENFALL_BASE_URL" in err and "user name or password" in err, err
        assert "sk-PASS" not in err and "WORD99" not in err and "user:12" not in err and "'12'" not in err, err
    assert not (tmp_path / ".gridrun" / "state.db").exists()
    monkeypatch.delenv("LUMENFALL_BASE_URL")
    m = manifest(tmp_path, f'base_url: "{url}"\n')
    assert main(["validate", str(m)]) == 2
    err = capsys.readouterr().err
    assert f"{m}:5:" in err and "user name or password" in err, err
    assert "sk-PASS" not in err and "WORD99" not in err and "user:12" not in err and "'12'" not in err, err


@pytest.mark.parametrize("url", ["https://cdn.example/@team/v1", "http://127.0.0.1:99999/v1",
                                 "http://127.0.0.1:9x/v1", "https://cdn.example:8443/@team/v1"])
def test_a_base_url_with_no_credentials_is_not_taken_for_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str) -> None:
    """An '@' in the path is no password; a port that does not parse is said so, not in the parser's words."""
    monkeypatch.setenv("LUMENFALL_BASE_URL", url)
    main(["plan", str(manifest(tmp_path))])
    err = capsys.readouterr().err
    assert "user name or password" not in err, err
    if "127.0.0.1" in url:
        assert "its port, after the host's ':', is not a number from 0 to 65535" in err, err
        assert "could not be cast" not in err and "out of range" not in err, err


@pytest.mark.parametrize("url", ["bob:sk-PASSWORD99@gw.example/v1", "https//bob:sk-PASSWORD99@gw.example/v1"])
def test_a_base_url_with_credentials_but_no_scheme_is_refused_without_showing_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str) -> None:
    """No `http(s)://` (left out, or mistyped): the URL is not shown with its password, in the environment or in
    the manifest."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-x-key")
    monkeypatch.setenv("LUMENFALL_BASE_URL", url)
    m = manifest(tmp_path)
    assert main(["plan", str(m)]) == 2
    err = capsys.readouterr().err
    assert "LUMENFALL_BASE_URL" in err and "user name or password" in err and "PASSWORD99" not in err, err
    monkeypatch.delenv("LUMENFALL_BASE_URL")
    m = manifest(tmp_path, f"base_url: {url}\n")
    assert main(["validate", str(m)]) == 2
    err = capsys.readouterr().err
    assert f"{m}:5:" in err and "user name or password" in err and "PASSWORD99" not in err, err


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1?token=SECRETQ", "http://127.0.0.1:9/v1#SECRETQ",
                                 "http://127.0.0.1:9/v1?"])
def test_a_base_url_with_a_query_or_fragment_is_refused_where_it_is_set_without_showing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str) -> None:
    """Every request's path is added to the base URL's own: one with a query would miss the API for every create, and
    the query (a gateway's token, often) would be written into the state with each error."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-x-key")
    monkeypatch.setenv("LUMENFALL_BASE_URL", url)
    m = manifest(tmp_path)
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = capsys.readouterr().err
        assert "LUMENFALL_BASE_URL" in err and "has a query or a fragment" in err and "SECRETQ" not in err, err
    assert not (tmp_path / ".gridrun").exists()
    monkeypatch.delenv("LUMENFALL_BASE_URL")
    for place in ("manifest", "capabilities"):
        if place == "manifest":
            m = manifest(tmp_path, f"base_url: '{url}'\n")
            site = f"{m}:5:1: base_url: "
        else:
            caps = tmp_path / "c.yaml"
            caps.write_text(f"provider: lumenfall\nbase_url: '{url}'\n", encoding="utf-8")
            m = manifest(tmp_path, "capabilities: [c.yaml]\n")
            site = f"{caps}:2:1: base_url: "
        for command in ("validate", "plan", "run"):
            assert main([command, str(m)]) == 2, (place, command)
            err = capsys.readouterr().err
            assert site in err and "has a query or a fragment" in err and "SECRETQ" not in err, err
    assert not (tmp_path / ".gridrun").exists()


def test_a_base_url_off_this_machine_with_a_query_is_refused_without_showing_the_query(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "https://evil.example.com/v1?token=SECRETQ"
    caps = tmp_path / "c.yaml"
    caps.write_text(f"provider: lumenfall\nbase_url: '{url}'\n", encoding="utf-8")
    for extra, site in ((f"base_url: '{url}'\n", "m.yaml:5:1: base_url: "),
                        ("capabilities: [c.yaml]\n", "c.yaml:2:1: base_url: ")):
        m = manifest(tmp_path, extra)
        assert main(["validate", str(m)]) == 2
        err = capsys.readouterr().err
        assert site in err and "SECRETQ" not in err, err


BAD_URLS = ["http://[::1", "http://a\x01b/v1", "http://127.0.0.1:/v1", "http://", "http://127.0.0.1:99999/v1",
            "http://127.0.0.1:0/v1", "http://127.0.0.1:1/v1/\udcff"]  # the last: a byte 0xff, not UTF-8


@pytest.mark.parametrize("url", BAD_URLS)
def test_an_environment_base_url_that_does_not_parse_is_refused_before_any_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str) -> None:
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-x-key")
    monkeypatch.setenv("LUMENFALL_BASE_URL", url)
    m = manifest(tmp_path)
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = capsys.readouterr().err
        assert "LUMENFALL_BASE_URL" in err and "is not a valid URL" in err and "Traceback" not in err, err
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()


def test_a_manifest_base_url_that_does_not_parse_is_told_as_such_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for url in ("http://[::1", "http://127.0.0.1:/v1", "http://127.0.0.1:99999/v1"):
        m = manifest(tmp_path, f"base_url: '{url}'\n")
        for command in ("validate", "plan", "run"):
            assert main([command, str(m)]) == 2
            err = capsys.readouterr().err
            assert f"{m}:5:1: base_url: not a valid URL" in err and "nor this machine" not in err, err
        assert not (tmp_path / ".gridrun").exists()


@pytest.mark.parametrize("provider", ["lumenfall", "sim"])
def test_a_manifest_base_url_holding_a_lone_surrogate_is_refused_at_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provider: str) -> None:
    """A `\\ud800` escape is no text: no request, terminal or JSON output can write it. Refused when validated,
    not a crash of the plan that prints it or the run that sends to it."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-x-key")
    host = "https://api.lumenfall.ai" if provider == "lumenfall" else "http://127.0.0.1:1"
    m = manifest(tmp_path, f'base_url: "{host}/v1/\\ud800"\n')
    m.write_text(m.read_text(encoding="utf-8").replace("provider: lumenfall", f"provider: {provider}"),
                 encoding="utf-8")
    for command in (["validate"], ["plan"], ["plan", "--json"], ["run"]):
        assert main([*command, str(m)]) == 2, command
        out, err = capsys.readouterr()
        said = err or out
        assert "base_url: not a valid URL: it holds a lone surrogate (\\ud800" in said and "a bug" not in said, said
    assert not (tmp_path / ".gridrun").exists()


@pytest.mark.parametrize(("line", "field", "fragment"), [
    ("base_url: ftp://x", "base_url", "must start with http:// or https://"),
    ("base_url: ' http://127.0.0.1:1/v1 '", "base_url", "has white space before or after it"),
    ("base_url: 'http://127.0.0.1:1/v1 '", "base_url", "has white space before or after it"),
    ("base_url: 'http://[::1'", "base_url", "is not a valid URL"),
    ("base_url: 'http://127.0.0.1:/v1'", "base_url", "is not a valid URL: its port is empty"),
    ("api_key_env: 'A B'", "api_key_env", "expected an environment variable name (letters, digits, _), got 'A B'"),
    ("api_key_env: ''", "api_key_env", "expected an environment variable name"),
])
def test_a_capabilities_file_base_url_or_key_variable_is_checked_at_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        line: str, field: str, fragment: str) -> None:
    caps = tmp_path / "c.yaml"
    caps.write_text(f"provider: lumenfall\n{line}\n", encoding="utf-8")
    monkeypatch.setenv("GRIDRUN_CAPABILITIES", str(caps))
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-x-key")
    m = manifest(tmp_path)
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = capsys.readouterr().err
        assert f"c.yaml:2:1: {field}: " in err and fragment in err and "Traceback" not in err, err
    assert not (tmp_path / ".gridrun").exists()


def test_a_base_url_with_spaces_around_it_in_a_file_is_refused_at_its_line_by_every_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """One rule at validate, plan and run: a capabilities file the manifest names, or the manifest itself, whose
    base_url has a space before or after it is refused at that line (run refused it before, at no line)."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-x-key")
    (tmp_path / "caps.yaml").write_text("provider: lumenfall\nbase_url: ' http://127.0.0.1:1/v1 '\n")
    for extra, where in (("capabilities: [caps.yaml]\n", f"{tmp_path / 'caps.yaml'}:2:1: base_url: "),
                         ("base_url: 'http://127.0.0.1:1/v1 '\n", "m.yaml:5:1: base_url: ")):
        m = manifest(tmp_path, extra)
        for command in ("validate", "plan", "run"):
            assert main([command, str(m)]) == 2, command
            err = capsys.readouterr().err
            assert where in err and "Traceback" not in err, err
        assert not (tmp_path / ".gridrun").exists()


def test_a_base_url_whose_scheme_is_in_capitals_is_taken_as_http(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """HTTP:// is http:// (schemes are case-insensitive): from the environment, a manifest or a capabilities
    file, and sent to as http://."""
    from runner.providers.transport import resolve_base_url

    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-x-key")
    (tmp_path / "caps.yaml").write_text("provider: lumenfall\nbase_url: HTTP://127.0.0.1:1/v1\n")
    for extra in ("capabilities: [caps.yaml]\n", "base_url: HTTP://127.0.0.1:1/v1\n"):
        m = manifest(tmp_path, extra)
        for command in ("validate", "plan"):
            assert main([command, str(m)]) == 0, capsys.readouterr().err
            capsys.readouterr()
    monkeypatch.setenv("LUMENFALL_BASE_URL", "HTTP://127.0.0.1:8080/v1")
    m = manifest(tmp_path)
    assert main(["plan", str(m)]) == 0, capsys.readouterr().err
    assert "endpoint: HTTP://127.0.0.1:8080/v1" in capsys.readouterr().out
    assert resolve_base_url(None, "LUMENFALL_BASE_URL", "") == "http://127.0.0.1:8080/v1"
    assert resolve_base_url("HTTPS://api.lumenfall.ai/v1/", None, "") == "https://api.lumenfall.ai/v1"


def test_a_capabilities_file_base_url_under_provider_sim_is_warned_of_as_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`provider: sim` runs the simulator built in unless the manifest's own `base_url:` names a served one: a
    capabilities file's `base_url:` (checked, this machine only) is warned of at its line as ignored by validate,
    plan and run, which renders in process, never asking that address."""
    caps = tmp_path / "caps.yaml"
    caps.write_text("provider: sim\nbase_url: http://127.0.0.1:9/v1\n", encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: fox\nprovider: sim\nmodel: pixverse-v5.6\ncapabilities: [caps.yaml]\n"
                 "sim: {render_time: 0.05}\n" + TAIL, encoding="utf-8")
    for command in ("validate", "plan"):
        assert main([command, str(m)]) == 0
        said = capsys.readouterr()
        assert f"{caps}:2:1: base_url: ignored" in said.out + said.err, said
    assert main(["plan", str(m), "--json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert any("base_url: ignored" in w and "in process" in w for w in warnings), warnings
    p = api.plan(m)
    assert p.endpoint == ("in process", "the simulator built in, no network")
    result = api.run(m, report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1
    assert any(f"{caps}:2:1: base_url: ignored" in w for w in result.warnings), result.warnings

    # the manifest's own base_url: is the one a served simulator is named by: nothing said of the file's then
    m.write_text(m.read_text().replace("sim: {render_time: 0.05}\n", "base_url: http://127.0.0.1:9/v1\n"))
    assert not any("ignored" in w for w in api.plan(m).warnings)


def test_a_missing_key_set_in_a_dotenv_file_beside_the_manifest_is_said_without_its_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """gridrun reads the key from the environment only: a `.env` file that sets it (beside the manifest, or in the
    working folder) is named, with how to export it, its value never shown; one that does not set it is not."""
    monkeypatch.delenv("LUMENFALL_API_KEY", raising=False)
    project = tmp_path / "project"
    project.mkdir()
    m = manifest(project)
    (project / ".env").write_text("OTHER=1\nexport LUMENFALL_API_KEY=lmnfl_fromdotenv_SECRET7\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["run", str(m), "--no-report"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"a .env file ({project / '.env'}) sets LUMENFALL_API_KEY, but gridrun reads only the environment: " \
           f"export it first (set -a; . {project / '.env'}; set +a)" in err, err
    assert "SECRET7" not in err
    monkeypatch.chdir(project)
    assert main(["run", str(m), "--no-report"]) == 2
    assert "(set -a; . ./.env; set +a)" in capsys.readouterr().err
    (project / ".env").write_text("OTHER_API_KEY=x\n", encoding="utf-8")
    assert main(["run", str(m), "--no-report"]) == 2
    assert ".env" not in capsys.readouterr().err


def test_an_api_key_pasted_into_the_manifest_is_refused_at_its_line_without_showing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`params: {api_key: <the key>}` would send the key in each request's body and keep it in the state, the
    sidecars and the report: refused before anything is recorded, named by its variable."""
    from runner.cli import main

    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1")
    m = manifest(tmp_path, "vars:\n  token: 'Bearer lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1'\n")
    m.write_text(m.read_text().replace("params: {", "params: {api_key: lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1, "))
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = " ".join(capsys.readouterr().err.split())
        assert "params.api_key: holds the value of LUMENFALL_API_KEY (an API key, not shown)" in err, err
        assert "vars.token: holds the value of LUMENFALL_API_KEY" in err, err
        assert "Zq8xR2" not in err, err
    assert not (tmp_path / ".gridrun").exists()


def test_an_api_key_written_as_a_mapping_key_is_refused_at_its_line_without_showing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A key written as a mapping's key (`lmnfl_...: x` under `vars:`, in a flow mapping, as `? key`) is in the
    manifest's text the state and `.runs/` keep, as a value is: refused at its line before anything is recorded,
    the mapping named (not the key, which is the field's name), named by its variable, never shown."""
    from runner.cli import main

    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: fox\nmodel: pixverse-v5.6\n"
                 "sim: {render_time: 0.05, jitter: 0.0}\n"
                 "params: {prompt: a fox, quality: 540p}\n"
                 "vars:\n  lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1: x\n  more: {'Bearer lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1': 1}\n"
                 "  ? lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1x\n"
                 "output: a.mp4\n", encoding="utf-8")
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = " ".join(capsys.readouterr().err.split())
        for at, mapping in ((f"{m}:7:3:", "vars"), (f"{m}:8:10:", "vars.more"), (f"{m}:9:5:", "vars")):
            assert (f"{at} {mapping}: a key of this mapping holds the value of LUMENFALL_API_KEY (an API key, not "
                    "shown)") in err, err
        assert err.count("holds the value of") == 3, err
        assert "Zq8xR2" not in err, err
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()
    # where the schema knows no such field (at the top, under run:) or no such value: refused so, not named
    m.write_text(m.read_text().replace("output: a.mp4\n", "output: a.mp4\nrun: {concurrency: 2, "
                                       "lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1: 1}\nlmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1: 1\n"
                                       "repeat: lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1\n"))
    assert main(["validate", str(m)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{m}:11:23: run: a key of this mapping holds the value of LUMENFALL_API_KEY (an API key, not shown)" \
        in err, err
    assert f"{m}:12:1: a key of this mapping holds the value of LUMENFALL_API_KEY (an API key, not shown)" in err, err
    assert f"{m}:13:1: repeat: holds the value of LUMENFALL_API_KEY (an API key, not shown)" in err, err
    assert "Zq8xR2" not in err and "unknown field" not in err, err


def test_an_api_key_in_a_manifest_comment_is_refused_at_its_line_without_showing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A run keeps the manifest's text whole, comments too, in the state and in `.runs/` beside the videos: a key
    in a comment (a block scalar's header comment too) is refused at its line before anything is recorded, named by
    its variable; the same words in a block scalar's text are its value's."""
    from runner.cli import main

    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: fox\n# key: lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1\nmodel: pixverse-v5.6\n"
                 "sim: {render_time: 0.05, jitter: 0.0}\n"
                 "params: {prompt: a fox, quality: 540p}  # lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1\n"
                 "vars:\n  note: |  # lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1\n    # a line of text\n"
                 "output: a.mp4\n", encoding="utf-8")
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = " ".join(capsys.readouterr().err.split())
        for at in (f"{m}:3:8:", f"{m}:6:43:", f"{m}:8:14:"):
            assert f"{at} a comment holds the value of LUMENFALL_API_KEY (an API key, not shown)" in err, err
        assert err.count("holds the value of") == 3, err
        assert "Zq8xR2" not in err, err
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()
    m.write_text(m.read_text().replace("# a line of text", "# lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1"))
    assert main(["validate", str(m)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{m}:8:3: vars.note: holds the value of LUMENFALL_API_KEY" in err and err.count("holds the value") == 4
    m.write_text(m.read_text().replace("lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1", "a note"))
    assert main(["run", str(m), "--no-report"]) == 0
    assert "# key: a note" in (tmp_path / "outputs" / "fox" / ".runs" / "run-1.yaml").read_text()


def test_an_api_key_in_a_manifest_anchor_alias_or_tag_is_refused_as_such_without_showing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An anchor or alias named by a key (`&lmnfl_...`, `*lmnfl_...`) is refused at its line as the anchor or alias
    it is, not as a comment; a tag (`!lmnfl_...`, which gridrun reads nowhere) and an alias to no anchor, refused as
    the manifest is read, are said so too, the key never shown."""
    from runner.cli import main

    key = "lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1"
    monkeypatch.setenv("LUMENFALL_API_KEY", key)
    m = tmp_path / "m.yaml"
    head = "version: 1\nname: fox\nmodel: pixverse-v5.6\nsim: {render_time: 0.05, jitter: 0.0}\n"
    m.write_text(f"{head}params: {{prompt: a fox, quality: 540p}}\nvars:\n  a: &{key} one\n  c: *{key}\n"
                 "output: a.mp4\n", encoding="utf-8")
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = " ".join(capsys.readouterr().err.split())
        assert f"{m}:7:7: an anchor holds the value of LUMENFALL_API_KEY (an API key, not shown)" in err, err
        assert f"{m}:8:7: an alias holds the value of LUMENFALL_API_KEY (an API key, not shown)" in err, err
        assert "comment" not in err and "Zq8xR2" not in err and err.count("holds the value of") == 2, err
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()
    for text, said in ((f"params: !{key} {{prompt: a fox, quality: 540p}}\n", f"{m}:5:9: params: a tag holds"),
                       (f"params: {{prompt: !{key} a fox, quality: 540p}}\n", f"{m}:5:18: params.prompt: a tag holds"),
                       (f"params: {{prompt: *{key}, quality: 540p}}\n", f"{m}:5:18: an alias holds")):
        m.write_text(f"{head}{text}output: a.mp4\n", encoding="utf-8")
        assert main(["validate", str(m)]) == 2, text
        err = " ".join(capsys.readouterr().err.split())
        assert f"{said} the value of LUMENFALL_API_KEY (an API key, not shown)" in err and "Zq8xR2" not in err, err


def test_an_api_key_in_a_line_yaml_cannot_read_or_under_a_key_it_names_is_never_shown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An error of the YAML that quotes the manifest's text does not quote a key in it: a line with no ':' after its
    key (or no '- ' before a list item), which the error would show as it is and as it would read fixed, is said to
    hold the key; an error of a value under a mapping's key that holds one (a bad `!!int`, a tag, a repeated key, a
    list nested too deep) is said of that mapping, at that key, once, the key never shown as the field's name; a
    comment holding one that cuts a value short (`prompt: a fox #lmnfl_...`) is refused, not quoted in the warning
    that the value ends before it."""
    from runner.cli import main

    key = "lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1"
    monkeypatch.setenv("LUMENFALL_API_KEY", key)
    m = tmp_path / "m.yaml"
    head = "version: 1\nname: fox\nmodel: pixverse-v5.6\nsim: {render_time: 0.05, jitter: 0.0}\n"
    params = "params: {prompt: a fox, quality: 540p}\n"
    for text, said in (
            (f"{params}repeat {key}\n", f"{m}:6:1: a line that does not parse holds"),
            (f"params:\n  prompt a fox {key}\n  quality: 540p\n", f"{m}:6:3: a line that does not parse holds"),
            (f"{params}vars:\n  l:\n    - anime\n    {key}\n", f"{m}:9:5: a line that does not parse holds"),
            (f"{params}vars:\n  {key}: !!int bad\n  b: 1\n", f"{m}:7:3: vars: a key of this mapping holds"),
            (f"{params}vars:\n  {key}: !x bad\n", f"{m}:7:3: vars: a key of this mapping holds"),
            (f"{params}vars:\n  {key}: {{a: !!int x, b: !!int y}}\n", f"{m}:7:3: vars: a key of this mapping holds"),
            (f"{params}vars:\n  {key}: 1\n  {key}: 2\n", f"{m}:7:3: vars: a key of this mapping holds"),
            (f"{params}vars:\n  {key}: {'[' * 120}{']' * 120}\n", "vars: a key of this mapping holds"),
            (f"params:\n  prompt: a fox #{key}\n  quality: 540p\n", f"{m}:6:18: a comment holds")):
        m.write_text(f"{head}{text}output: a.mp4\n", encoding="utf-8")
        for command in ("validate", "run"):
            assert main([command, str(m)]) == 2, (text, command)
            err = " ".join(capsys.readouterr().err.split())
            assert f"{said} the value of LUMENFALL_API_KEY (an API key, not shown)" in err, (text, err)
            assert "Zq8xR2" not in err and err.count("holds the value of") == 1, (text, err)
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()


def test_an_api_key_in_a_csv_header_row_is_refused_once_at_that_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A column named by a key is the header row's, not each data row's: refused once, at the header row's line
    (after Excel's `sep=,` line and a blank one here), the axis named, the key never shown."""
    from runner.cli import main

    key = "lmnfl_Zq8xR2vK9mW4tY7uP3sL6nB1"
    monkeypatch.setenv("LUMENFALL_API_KEY", key)
    (tmp_path / "shots.csv").write_text(f"sep=,\n\nid,{key}\n1,a fox\n2,a cat\n", encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: fox\nmodel: pixverse-v5.6\nsim: {render_time: 0.05, jitter: 0.0}\n"
                 "matrix:\n  shot: {file: shots.csv}\nparams: {prompt: '{{ shot.id }}', quality: 540p}\n"
                 "output: '{{ shot.id }}.mp4'\n", encoding="utf-8")
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = " ".join(capsys.readouterr().err.split())
        assert (f"{tmp_path / 'shots.csv'}:3:1: matrix.shot: a column name in the header row holds the value of "
                "LUMENFALL_API_KEY (an API key, not shown)") in err, err
        assert err.count("holds the value of") == 1 and "Zq8xR2" not in err, err
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()


def test_an_api_key_held_by_the_variable_a_capabilities_file_names_is_refused_in_the_manifest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """GRIDRUN_CAPABILITIES may name the variable that holds the key (`api_key_env`), no `*_API_KEY`: its value in a
    comment or a prompt is refused as a `*_API_KEY`'s is, named by that variable, before anything is recorded."""
    key = "lmnfl_Tk4pQ9wZ2xL7vN3sR8mB5cY1"
    caps = tmp_path / "c.yaml"
    caps.write_text("provider: lumenfall\napi_key_env: LUMENFALL_TOKEN\nbase_url: http://127.0.0.1:9/v1\n",
                    encoding="utf-8")
    monkeypatch.setenv("GRIDRUN_CAPABILITIES", str(caps))
    monkeypatch.delenv("LUMENFALL_API_KEY", raising=False)
    monkeypatch.setenv("LUMENFALL_TOKEN", key)
    m = manifest(tmp_path, f"# key: {key}\n")
    for command in ("validate", "plan", "run"):
        assert main([command, str(m)]) == 2, command
        err = " ".join(capsys.readouterr().err.split())
        assert "a comment holds the value of LUMENFALL_TOKEN (an API key, not shown)" in err and key not in err, err
    m.write_text(m.read_text().replace(f"# key: {key}\n", "").replace("prompt: ", f"prompt: {key} "))
    assert main(["validate", str(m)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "holds the value of LUMENFALL_TOKEN" in err and key not in err, err
    assert not (tmp_path / ".gridrun").exists()
