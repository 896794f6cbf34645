"""A simulated world written down as it changes, so that a later process finds it again.

One JSON object per line, in the order things happened: the world's beginning (`world`: its epoch, which ids
derive from), every create the simulator accepted (`create`: the video as made, with its request-log entry),
every create it refused or failed (`log`), and every cancel (`cancel`, with the `cancel_charge` it applied).
Statuses follow from these and the clock, so replaying the lines rebuilds the world exactly; URL tokens follow
from ids and are issued again.

Lines are appended before the simulator answers, and not synced: a killed process loses nothing it answered;
a power cut may lose the last answers, as a provider's outage would. A line cut short by a kill is dropped
when the file is read, as is everything after it.
"""

from __future__ import annotations

import json
import os
import weakref
from pathlib import Path
from typing import Any

VERSION = 1
KINDS = ("world", "create", "log", "cancel")


class WorldError(ValueError):
    """A world file that cannot be read: its path and line are in the message."""


class World:
    """The file of one simulated world. Only one process may write it at a time (gridrun's state lock).

    Appends go through one descriptor kept open until `close()` (or until the world is dropped)."""

    def __init__(self, path: Path, records: list[dict[str, Any]]) -> None:
        self.path = path
        self.records = records
        self.epoch: float | None = records[0]["epoch"] if records else None
        self._fd: int | None = None
        self._closer: weakref.finalize | None = None

    def close(self) -> None:
        """Close the file's descriptor; a later `append` opens it again."""
        if self._closer is not None:
            self._closer()  # closes the descriptor, once
        self._fd = self._closer = None

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def open(cls, path: Path) -> World:
        """Read the records of `path` (none when it does not exist).

        :raises WorldError: a line that is not a record, or a file of another version; a last line cut short
            is dropped and the file truncated before it.
        """
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls(path, [])
        except OSError as exc:
            raise WorldError(f"{path}: cannot read the simulator's world: {exc.strerror or exc}") from None
        records: list[dict[str, Any]] = []
        good = 0
        lines = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            last = number == len(lines)
            if not line.strip():
                good += len(line) + (not last)
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if records and (last or number == len(lines) - 1 and not lines[-1]):
                    break  # cut short by a kill: drop it (the first line, written whole by `begin`, never is)
                raise WorldError(f"{path}:{number}: not a JSON record; move the file aside to begin a new simulated world") from None
            if not isinstance(record, dict) or record.get("t") not in KINDS:
                raise WorldError(f"{path}:{number}: not a simulator record (t: one of {', '.join(KINDS)})")
            if record["t"] == "world" and record.get("v") != VERSION:
                raise WorldError(f"{path}:{number}: written by another version of the simulator (v={record.get('v')!r}, this one reads v={VERSION})")
            if record["t"] == "world" and not isinstance(record.get("epoch"), (int, float)):
                raise WorldError(f"{path}:{number}: a `world` record needs its epoch (a number)")
            if number == 1 and record["t"] != "world":
                raise WorldError(f"{path}:1: a simulator's world begins with a `world` record")
            records.append(record)
            good += len(line) + (not last)
        if good < len(data):
            try:
                with open(path, "r+b") as f:
                    f.truncate(good)
            except OSError as exc:
                raise WorldError(f"{path}: cannot drop its last, partial line: {exc.strerror or exc}") from None
        return cls(path, records)

    def begin(self, epoch: float) -> None:
        """Start the file afresh with a new world."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(_line({"t": "world", "v": VERSION, "epoch": epoch}), encoding="utf-8")
        self.close()  # appends go to the new file
        os.replace(tmp, self.path)
        self.records = []
        self.epoch = epoch

    def append(self, record: dict[str, Any]) -> None:
        """Add one record; it is in the file (not necessarily on disk) when this returns. A file deleted
        meanwhile begins again with this world's `world` record, so that it can still be read."""
        view = memoryview(_line(record).encode("utf-8"))
        fd = self._descriptor()
        while view:  # a write may take only part of it (a disk filling up)
            view = view[os.write(fd, view):]

    def _descriptor(self) -> int:
        """The descriptor appends go through: the one open, while its file is still at `path` (has a name);
        else the file at `path` now, opened; else a file begun again."""
        if self._fd is not None and os.fstat(self._fd).st_nlink > 0:
            return self._fd
        self.close()  # deleted, or replaced by another file: the one at `path` now is written
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            self.begin(self.epoch if self.epoch is not None else 0.0)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd)
        return fd


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
