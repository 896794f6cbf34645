"""A capabilities file's rules that cannot be applied to a job's values are told at the rule's line in that file:
a `when_matches` pattern that would backtrack for ever on a prompt, a `max` given for a text parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import api
from runner.errors import ManifestError
from runner.providers import capabilities

MANIFEST = """\
version: 1
name: fox
provider: sim
model: pixverse-v5.6
capabilities: [caps.yaml]
params:
  prompt: "{prompt}"
  quality: 360p
output: "{{{{ hash }}}}.mp4"
"""


def plan_error(tmp_path: Path, rules: str, prompt: str = "a fox") -> ManifestError:
    (tmp_path / "caps.yaml").write_text(f"provider: sim\nmodels:\n  pixverse-v5.6:\n    rules:\n{rules}",
                                        encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST.format(prompt=prompt), encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        api.plan(m)
    return caught.value


def test_a_pattern_that_backtracks_without_end_is_stopped_and_told_at_its_rule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`(a|aa)+` on forty a's and a '!' splits the text in more ways than Python's engine would try before the end
    of the universe: the match is stopped, and the error names the file, the rule's line, the pattern and the
    value it was matched against."""
    monkeypatch.setattr(capabilities, "_MATCH_SECONDS", 0.1, raising=False)
    rules = ("      - {when: {quality: 1080p}, param: duration, max: 5, message: short at 1080p}\n"
             "      - {when_matches: {prompt: '(a|aa)+'}, param: quality, ignored: true, message: a's only}\n")
    err = plan_error(tmp_path, rules, "a" * 40 + "!")
    assert (err.file, err.line, err.field) == (tmp_path / "caps.yaml", 6, "models.pixverse-v5.6.rules[1].when_matches.prompt")
    assert err.message.startswith("'(a|aa)+' took more than 0.1 s to match the prompt 'aaaa"), err.message
    assert "(41 characters) and was stopped" in err.message, err.message


def test_a_pattern_that_matches_in_good_time_applies_as_before(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text(
        "provider: sim\nmodels:\n  pixverse-v5.6:\n    rules:\n"
        "      - {when_matches: {prompt: '(\\w+\\s?)+'}, param: quality, ignored: true, message: plain words}\n",
        encoding="utf-8")
    m = tmp_path / "m.yaml"
    for prompt, warned in (("a red fox running through fresh snow at dusk!", False), ("a red fox", True)):
        m.write_text(MANIFEST.format(prompt=prompt), encoding="utf-8")
        warnings = [getattr(w, "plain", w) for w in api.plan(m).warnings]
        assert (warnings == ["params.quality: '360p' is not used: plain words"]) is warned, warnings


@pytest.mark.parametrize(("rule", "name", "column"), [
    ("{param: prompt, max: 5, message: short}", "prompt", 25),
    ("{when: {duration: 5}, param: quality, max: 5, message: low}", "quality", 47),
    ("{param: mood, max: 5, message: calm}", "mood", 23),  # no type in the data: told by the job's value
])
def test_a_max_given_for_a_text_parameter_is_told_at_its_rule(tmp_path: Path, rule: str, name: str,
                                                              column: int) -> None:
    """`max` bounds a number; given for a text parameter it is a slip of the file, said there, not a comparison
    of text with a number failing at the manifest's `capabilities:`."""
    (tmp_path / "caps.yaml").write_text(f"provider: sim\nmodels:\n  pixverse-v5.6:\n    rules:\n      - {rule}\n",
                                        encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST.format(prompt="a fox").replace("  quality: 360p\n", "  quality: 360p\n  mood: calm\n"),
                 encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        api.plan(m)
    err = caught.value
    assert (err.file, err.line, err.column, err.field) == (tmp_path / "caps.yaml", 5, column,
                                                           "models.pixverse-v5.6.rules[0].max"), str(err)
    assert err.message.startswith(f"max is given for {name}, a string parameter (text); max bounds a number"), \
        err.message
    assert "TypeError" not in str(err)


def test_a_max_of_a_number_parameter_still_bounds_it(tmp_path: Path) -> None:
    (tmp_path / "caps.yaml").write_text(
        "provider: sim\nmodels:\n  pixverse-v5.6:\n    rules:\n      - {param: duration, max: 5, message: 5 s at most}\n",
        encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST.format(prompt="a fox") + "matrix:\n  duration: [5, 8]\n", encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        api.plan(m)
    assert "8 is too large: 5 s at most" in str(caught.value), str(caught.value)
