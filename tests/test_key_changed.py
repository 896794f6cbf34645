"""Jobs in flight sent with one API key are collected with that key only: another key at the same endpoint is most
often another account, which has no such video. A run with it would wait out the 404s, record the paid renders
`unknown`, and `retry --unknown` would pay for them again on the second account. Each run records a short
fingerprint of the key it sent (never the key); `plan` says which key the jobs were sent with, `run` refuses before
it sends anything and says to set the key back. A state whose runs recorded no fingerprint runs as before.

The provider is a simulator served on 127.0.0.1 with its simulator header taken off its answers (`serving`)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from execkit import write_manifest
from test_sent_elsewhere import killed_in_flight, serving, states

from runner import api
from runner.cli import main
from runner.errors import InFlightError
from runner.plan import key_fingerprint

KEY_A, KEY_B = "lmnfl_accountA_1111111", "lmnfl_accountB_2222222"


def _prints(m: Path) -> list[str | None]:
    with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db:
        return [row[0] for row in db.execute("SELECT key_print FROM runs ORDER BY id")]


def test_the_fingerprint_is_short_fixed_and_not_the_key() -> None:
    fp = key_fingerprint(KEY_A)
    assert len(fp) == 8 and int(fp, 16) >= 0 and fp == key_fingerprint(KEY_A) != key_fingerprint(KEY_B)
    assert fp not in KEY_A and KEY_A[:6] not in fp


@pytest.mark.timeout(180)
def test_jobs_in_flight_sent_with_another_key_are_named_refused_and_collected_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed with jobs rendering under key A, the key now B at the same endpoint: plan names A's fingerprint and the
    variable, run refuses before anything reaches the provider; with the key set back, the run collects them, no
    create sent again. Runs that recorded no fingerprint (an older gridrun's) are taken as sent with the key now."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="lumenfall", sim={},
                       run={"poll_interval": 0.05, "concurrency": 2})
    a_print, b_print = key_fingerprint(KEY_A), key_fingerprint(KEY_B)
    with serving(3.0, marked=False) as (url, sim):
        monkeypatch.setenv("LUMENFALL_BASE_URL", url)
        killed_in_flight(m, {"LUMENFALL_BASE_URL": url, "LUMENFALL_API_KEY": KEY_A})
        before, sent, asked = states(m), sim.stats()["creates"], len(sim.paths)
        assert len(before) == 2 and set(before.values()) <= {"submitted", "running"}, before
        assert _prints(m) == [a_print]
        raw = (m.parent / ".gridrun" / "state.db").read_bytes()
        assert KEY_A.encode() not in raw

        monkeypatch.setenv("LUMENFALL_API_KEY", KEY_B)
        d = api.diff(api.plan(m))
        assert d is not None and d.key_away is not None
        for key in before:
            reason = d.reasons[key]
            assert "attach" not in reason and a_print in reason and "LUMENFALL_API_KEY" in reason, reason
        assert d.following == ()
        capsys.readouterr()
        assert main(["plan", str(m)]) == 0
        shown = capsys.readouterr()
        assert "`gridrun run` would refuse to start" in shown.err and a_print in shown.err, shown.err
        assert main(["plan", str(m), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert {job["key_fingerprint"] for job in doc["sent_with_another_key"]["jobs"].values()} == {a_print}
        assert main(["run", str(m), "--no-report"]) == InFlightError.exit_code
        said = capsys.readouterr().err
        assert f"et LUMENFALL_API_KEY back to the key of fingerprint {a_print}" in said, said
        assert b_print in said and "--leave-in-flight" in said and "retry --unknown" not in said, said
        assert KEY_A not in said and KEY_B not in said
        assert sim.stats()["creates"] == sent and len(sim.paths) == asked  # nothing at all was sent
        assert states(m) == before
        # nor does cancel ask about them with key B (their 404s would make them `unknown`, for retry --unknown to
        # pay again): named, left as they are, with the key to set back
        assert main(["cancel", str(m)]) == 1
        said = " ".join(capsys.readouterr().err.split())
        assert f"were sent with another API key (fingerprint {a_print})" in said, said
        assert f"set LUMENFALL_API_KEY back to the key of fingerprint {a_print}" in said, said
        assert len(sim.paths) == asked and states(m) == before

        with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db, db:  # as an older gridrun left it
            db.execute("UPDATE runs SET key_print = NULL")
        d = api.diff(api.plan(m))
        assert d is not None and d.key_away is None
        assert all(d.reasons[k].endswith("attach, pay nothing new") for k in before), d.reasons
        with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db, db:
            db.execute("UPDATE runs SET key_print = ?", (a_print,))

        monkeypatch.setenv("LUMENFALL_API_KEY", KEY_A)
        d = api.diff(api.plan(m))
        assert d is not None and d.key_away is None
        result = api.run(m, report=False)
        assert result.exit_code == 0 and set(states(m).values()) == {"done"}
        assert sim.stats()["creates"] == sent
        assert _prints(m) == [a_print, a_print]


def test_a_run_of_the_simulator_built_in_records_no_key(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    assert _prints(m) == [None]


def test_plan_names_the_served_simulators_key_variable_as_its_provider_does() -> None:
    from runner.providers.sim import KEY_ENV

    assert api.SIM_KEY_ENV == KEY_ENV


def _events(m: Path, kind: str) -> list[dict[str, str]]:
    with closing(sqlite3.connect(m.parent / ".gridrun" / "state.db")) as db:
        return [json.loads(row[0]) for row in db.execute("SELECT detail FROM events WHERE kind=? ORDER BY id", (kind,))]


@pytest.mark.timeout(180)
def test_a_key_rotated_on_the_same_account_collects_the_jobs_in_flight_with_same_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed with jobs rendering under key A, the key then rotated to B of the same account (A revoked, so it cannot
    be set back): `status` and a --leave-in-flight run's end do not point at a plain `gridrun run` (which refuses),
    but name A's fingerprint and --same-account; the refusal names it too; `run --same-account` asks about them with
    B, records that, and collects both videos with no create sent again."""
    rotated = "lmnfl_accountA_rotated2"
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="lumenfall", sim={},
                       run={"poll_interval": 0.05, "concurrency": 2})
    a_print, b_print = key_fingerprint(KEY_A), key_fingerprint(rotated)
    with serving(0.5, marked=False) as (url, sim):
        monkeypatch.setenv("LUMENFALL_BASE_URL", url)
        killed_in_flight(m, {"LUMENFALL_BASE_URL": url, "LUMENFALL_API_KEY": KEY_A})
        before, sent = states(m), sim.stats()["creates"]
        assert len(before) == 2 and set(before.values()) <= {"submitted", "running"}, before
        monkeypatch.setenv("LUMENFALL_API_KEY", rotated)
        capsys.readouterr()

        assert main(["run", str(m), "--no-report"]) == InFlightError.exit_code
        said = " ".join(capsys.readouterr().err.split())
        assert "--same-account" in said and a_print in said and b_print in said, said
        assert main(["run", str(m), "--no-report", "--leave-in-flight"]) == 1
        said = " ".join(capsys.readouterr().err.split())
        assert "left in flight at no new cost" not in said, said
        assert f"set LUMENFALL_API_KEY back to the key of fingerprint {a_print}" in said, said
        assert "`gridrun run --same-account`" in said, said
        main(["status", str(m)])
        shown = capsys.readouterr()
        said = " ".join((shown.out + shown.err).split())
        assert "left in flight at no new cost" not in said, said
        assert f"set LUMENFALL_API_KEY back to the key of fingerprint {a_print}" in said, said
        assert "`gridrun run --same-account`" in said, said
        main(["status", str(m), "--json"])
        doc = json.loads(capsys.readouterr().out)
        assert {(j["key"], j["fingerprint"], j["variable"]) for j in doc["sent_with_another_key"]} == {
            (key, a_print, "LUMENFALL_API_KEY") for key in before}
        assert states(m) == before and sim.stats()["creates"] == sent

        assert main(["run", str(m), "--no-report", "--same-account"]) == 0, capsys.readouterr().err
        assert set(states(m).values()) == {"done"}
        assert sim.stats()["creates"] == sent  # collected, not sent again
        assert len(list((m.parent / "outputs").rglob("*.mp4"))) == 2
        assert [(e["sent_with"], e["key_print"]) for e in _events(m, "same-account")] == [(a_print, b_print)] * 2


@pytest.mark.timeout(180)
def test_cancel_with_same_account_cancels_jobs_sent_with_the_key_before_a_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cancel` asks nothing about jobs sent with another key, naming --same-account; with it, they are cancelled
    with the key now, each recorded."""
    rotated = "lmnfl_accountA_rotated2"
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="lumenfall", sim={},
                       run={"poll_interval": 0.05, "concurrency": 2})
    with serving(30.0, marked=False) as (url, _sim):
        monkeypatch.setenv("LUMENFALL_BASE_URL", url)
        killed_in_flight(m, {"LUMENFALL_BASE_URL": url, "LUMENFALL_API_KEY": KEY_A})
        before = states(m)
        monkeypatch.setenv("LUMENFALL_API_KEY", rotated)
        capsys.readouterr()
        assert main(["cancel", str(m)]) == 1
        said = " ".join(capsys.readouterr().err.split())
        assert "--same-account" in said and states(m) == before, said
        assert main(["cancel", str(m), "--same-account"]) == 0, capsys.readouterr().err
        assert set(states(m).values()) == {"cancelled"}
        assert len(_events(m, "same-account")) == 2
