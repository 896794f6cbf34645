"""Whether git tracks a file: a state committed and cloned shares its key salt with every clone, and an output
folder's lock committed makes a fresh clone look like a state lost. Read cheaply and never required: `git
ls-files` where git is installed (with a short timeout), else the names in the repository's index file; any
doubt (no git work tree, an index gridrun cannot read, git slow or failing) answers "not known", never an error."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

__all__ = ["tracked", "untrack_command", "work_tree"]

# The longest gridrun waits for `git ls-files` (a large index on a slow disk answers "not known" past it).
GIT_TIMEOUT = 2.0
# How many folders up a `.git` is looked for.
MOST_LEVELS = 40


def work_tree(path: Path) -> Path | None:
    """The root of the git work tree holding `path` (the nearest folder up with a `.git`, a folder or, in a linked
    worktree or a submodule, a file); None outside one."""
    folder = Path(os.path.abspath(path))
    for _ in range(MOST_LEVELS):
        if os.path.lexists(folder / ".git"):
            return folder
        if folder.parent == folder:
            return None
        folder = folder.parent
    return None


def untrack_command(path: Path, typed: Callable[[str], str], *, folder: bool = False) -> str:
    """The command that stops git tracking `path` (a `folder` with all in it), leaving the file itself, written
    to work from the current folder, each path as `typed` quotes it for the shell: git takes paths only inside
    the work tree it is run in, so from outside that tree it is told the tree (`git -C <root>`) and the path
    from there."""
    rm = "rm -r --cached" if folder else "rm --cached"
    real = os.path.realpath(path)
    root = work_tree(path)
    try:
        here = os.path.realpath(os.getcwd())
    except OSError:  # the current folder removed: only the tree's own path says where
        here = None
    if root is None:
        return f"git {rm} {typed(real)}"
    top = os.path.realpath(root)
    if here is not None and (here == top or here.startswith(top.rstrip(os.sep) + os.sep)):
        return f"git {rm} {typed(os.path.relpath(real, here))}"
    return f"git -C {typed(top)} {rm} {typed(os.path.relpath(real, top))}"


def git_dir(root: Path) -> Path | None:
    """The repository folder of the work tree `root`: its `.git` folder, or where its `.git` file points."""
    dot = root / ".git"
    if dot.is_dir():
        return dot
    try:
        text = dot.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("gitdir:"):
            where = Path(line[len("gitdir:"):].strip())
            return where if where.is_absolute() else (root / where)
    return None


def tracked(path: Path) -> bool | None:
    """Whether git tracks the file `path` (True, False), or None when that is not known."""
    path = Path(os.path.abspath(path))
    root = work_tree(path.parent)
    if root is None:
        return False
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        return None
    git = shutil.which("git")
    if git is not None:
        try:
            done = subprocess.run([git, "-C", str(root), "ls-files", "-z", "--", rel], capture_output=True,
                                  timeout=GIT_TIMEOUT, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}, check=False)
        except (OSError, subprocess.SubprocessError):
            done = None
        if done is not None and done.returncode == 0:
            return rel.encode() in done.stdout.split(b"\x00")
    return _in_index(root, rel)


def _in_index(root: Path, rel: str) -> bool | None:
    """Whether the index file of the work tree `root` names `rel`, read as bytes: an entry's name follows its
    flags (their low 12 bits its length) and ends with a NUL. An index of version 4 (names written as a part of
    the one before) or one that cannot be read: None."""
    where = git_dir(root)
    if where is None:
        return None
    try:
        data = (where / "index").read_bytes()
    except FileNotFoundError:
        return False  # nothing added yet
    except OSError:
        return None
    if len(data) < 12 or data[:4] != b"DIRC":
        return None
    if int.from_bytes(data[4:8], "big") not in (2, 3):
        return None
    name = rel.encode()
    size = min(len(name), 0xFFF)
    start = 0
    while (at := data.find(name + b"\x00", start)) != -1:
        for before in (at - 2, at - 4):  # the flags, or the flags then the extended flags (version 3)
            if before >= 0 and int.from_bytes(data[before:before + 2], "big") & 0xFFF == size:
                return True
        start = at + 1
    return False
