"""Helpers for state tests: state files as an older gridrun wrote them, and what a state file holds."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from runner.state import _MIGRATIONS


@contextlib.contextmanager
def old_state(path: Path, version: int) -> Iterator[sqlite3.Connection]:
    """A state file made as gridrun made it at schema `version` (its first `version` migrations), open for the
    caller to fill in; committed and closed after."""
    with closing(sqlite3.connect(path)) as db:
        for migrate in _MIGRATIONS[:version]:
            migrate(db)
        db.execute(f"PRAGMA user_version = {version}")
        yield db
        db.commit()


def columns_of(path: Path) -> dict[str, list[str]]:
    """Each table of a state file and its columns."""
    with closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}


def contents(path: Path, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (of `columns`' tables and columns: those of an older schema), in order."""
    columns = columns_of(path) if columns is None else columns
    with closing(sqlite3.connect(path)) as db:
        return {t: db.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY rowid").fetchall()
                for t, cols in columns.items()}


class FullDisk:
    """A state store's connection whose disk is full from now on: every commit fails as SQLite's does."""

    def __init__(self, db: object) -> None:
        self._db = db

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT":
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = sqlite3.SQLITE_FULL
            raise exc
        return self._db.execute(sql, *args)
