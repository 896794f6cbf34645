"""The plan: a manifest expanded into jobs with keys, hashes, costs and output paths.

`build()` is pure but for what is injected: a callback that hashes local input files, and what the state
recorded of the input images its done jobs sent (`ImageRecords`, for an image since moved away); it touches no
network, state or clock itself. `diff()` compares a plan with what the state store holds.
"""

from __future__ import annotations

import gc
import hashlib
import ipaddress
import os
import posixpath
import re
import stat
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from . import _Later, images
from .datafiles import DataLines, Flagged
from .errors import (
    CapabilityError,
    ManifestError,
    ManifestErrors,
    MatrixError,
    StateError,
)
from .ghexpr import fold as gh_fold
from .jobs import (
    BilledAbove,
    Billing,
    Job,
    canonical,
    format_value,
    job_hash,
    job_key,
    param_strings,
    usd_text,
)
from .localpaths import (
    PATH_MAX,
    UNUSABLE,
    fs_encoding,
    limits,
    not_recordable,
    shown,
    unnameable,
    why_unusable,
)
from .manifest import KEY_AS_NAME, KEY_AS_VALUE, Manifest, Warned
from .matrix import Combination, Expansion, Prepared, matrix_warnings, prepare
from .options import decimal_of, refused_again
from .outputs import (
    NOTHING_ASIDE,
    Aside,
    files_beside,
    foreign_file,
    gridrun_sidecar,
    kept_aside,
    leads_out,
    own_folder_link,
    own_link_said,
    own_temp,
    poster_size,
    superseded_dir,
    tmp_stem,
)
from .providers.capabilities import API_ROOTS, ProviderCaps
from .sweeps import (
    Collector,
    JobMaker,
    Sweep,
    compile_sweep,
    fold,
    null_beside_value,
    param_named,
    read_by,
    sweeps_of,
)
from .terminal import typed
from .textforms import alike, alike_value, drawn, escaped, unlike_parts, unspaced_value
from .yamlsource import (
    cut_by_comments,
    dotted,
    key_held,
    plain_value_source,
    read_otherwise_before,
)

if TYPE_CHECKING:
    from . import resume
else:  # `resume` imports this module: `Diff`'s annotations name its classes through it (`typing.get_type_hints`)
    resume = _Later(".resume")

__all__ = [
    "DEFAULT_MAX_JOBS", "Diff", "Job", "Plan", "Stored", "build", "diff", "file_sha256", "format_value", "job_hash",
    "job_key", "outputs_dir_of", "overwrites", "relpath", "state_dir_of", "summarize_sources",
]

DEFAULT_MAX_JOBS = 1000


@dataclass(frozen=True, slots=True)
class Plan:
    """Every job of a manifest, in order, with totals."""

    manifest: Manifest
    provider: str
    model: str
    jobs: tuple[Job, ...]
    excluded: tuple[tuple[str | None, Combination, int], ...]
    axes: tuple[str, ...]                   # matrix keys in order of first appearance
    varying: tuple[str, ...]                # of those, the ones with more than one value or missing from some jobs
    warnings: tuple[str, ...]
    total_micros: int
    outputs_dir: Path
    state_dir: Path
    budget_micros: int | None
    max_jobs: int
    occupied: tuple[str, ...] = ()          # video paths where a file with no sidecar beside it sits (`overwrites`)
    sidecared: tuple[str, ...] = ()         # video paths where a file with a sidecar beside it sits (`overwrites`)
    posters: tuple[str, ...] = ()           # video paths whose poster's place (`.jpg`) a file holds (`overwrites`)
    temps: tuple[str, ...] = ()             # files named as gridrun's temporary files in the videos' folders
                                            # (`outputs.own_temp`), which a run removes once their writer is gone
    read_otherwise: tuple[str, ...] = ()    # the warning of a string an earlier gridrun read otherwise, told while
                                            # the state's last run sent other text (`told_read_otherwise`)
    endpoint: tuple[str, str] = ("", "")   # the base URL a run sends to, and where that comes from (`api.endpoint`)
    # The fingerprint of the API key a run sends with (`key_fingerprint`) and the variable that holds it; None: no
    # key (the simulator built in, or none set)
    key_print: tuple[str, str] | None = None
    # A local input image's path, as jobs' params hold it -> the SHA-256 of the bytes the plan read and hashed:
    # what a run checks the bytes it sends against (`images.read_as_planned`), and records of each job sending it
    # (`Job.record`'s "request"), to name an image changed since.
    image_digests: Mapping[str, str] = field(default_factory=dict)
    # The hash of each job the state holds done whose local input image is not found (moved away since it was
    # sent), planned from the digest recorded then -> the path looked for: no run sends it, --force neither.
    images_gone: Mapping[str, str] = field(default_factory=dict)
    # Planned with `unread_images` (`build`): the hash of each job sending a local input image not found whose
    # digest no record gives (planned with `IMAGE_UNREAD`, so its hash is no render's) -> the path looked for.
    images_unread: Mapping[str, str] = field(default_factory=dict)
    # The hash of each job whose price a capabilities file the manifest names makes lower than gridrun's own data
    # (with GRIDRUN_CAPABILITIES's files, the user's own) makes it -> that price (`api._lowered_prices`): a run
    # weighs the provider's bill of its render against it too (`jobs.counted_cost`).
    lowered: Mapping[str, int] = field(default_factory=dict)

    @property
    def total_usd(self) -> float:
        return self.total_micros / 1_000_000


# --------------------------------------------------------------------------------------------------


def outputs_dir_of(manifest: Manifest, *, check: bool = True) -> Path:
    """The output folder `manifest` names. `check`: refuse text a shell would read otherwise (`_check_folder_text`);
    off for the commands that only read what runs wrote (`status`, `report`, `export`), which make no folder."""
    raw = manifest.data.get("outputs_dir")
    if raw and check:
        _check_folder_text(manifest, "outputs_dir", raw)
    return _resolved(manifest, "outputs_dir" if raw else "name", outputs_dir_named(manifest))


def outputs_dir_named(manifest: Manifest) -> Path:
    """The output folder as `manifest` names it (`outputs_dir:`, else outputs/<name>, beside the manifest), its
    links not followed: where a link to a folder not there leads from (`resume.outputs_gone`)."""
    raw = manifest.data.get("outputs_dir")
    return manifest.base_dir / raw if raw else manifest.base_dir / "outputs" / manifest.name


def budget_micros(usd: Any) -> int | None:
    """A budget in USD (`run.budget_usd`, `--budget`) in micro-USD, rounded down (a cap is never raised: $4.1999995
    rounded to the nearest let a plan of $4.20 fit; costs are whole micro-USD, so a cost fits the budget rounded
    down exactly when it fits the budget as written); None for none. Counted in decimal, from the
    number as written, so that $0.57 is 570,000, not the 569,999.99... its float makes: a Decimal (`--budget`,
    the Python API, `manifest_budget`) as it is, digit for digit (4.1999999999999999 is $4.199999, where its float
    is 4.2); a float as its shortest repr."""
    if usd is None:
        return None
    exact = usd if isinstance(usd, Decimal) else Decimal(repr(float(usd)))
    return int(exact.quantize(MICRO, rounding=ROUND_FLOOR).scaleb(6))


MICRO = Decimal("0.000001")


def manifest_budget(manifest: Manifest) -> Any:
    """The manifest's `run.budget_usd` as written: a number with more digits than a float keeps (YAML reads it as
    the nearest float) as a Decimal of its text, so that `budget_micros` floors the digits written, not a float
    rounded up past them; else the value loaded (None for none)."""
    usd = (manifest.run or {}).get("budget_usd")
    if not isinstance(usd, float) or not manifest.text:
        return usd
    at = manifest.positions.get(("run", "budget_usd"))
    text = None if at is None else plain_value_source(manifest.text, at, "budget_usd")
    exact = None if text is None else decimal_of(text)
    return exact if exact is not None and float(exact) == usd else usd


def state_dir_of(manifest: Manifest, *, check: bool = True) -> Path:
    """The state folder `manifest` names; `check` as for `outputs_dir_of`."""
    raw = manifest.data.get("state_dir")
    if raw and check:
        _check_folder_text(manifest, "state_dir", raw)
    return _resolved(manifest, "state_dir" if raw else "", manifest.base_dir / raw if raw else manifest.base_dir / ".gridrun")


_BRACED = re.compile(r"\$\{[^}]*\}")
_NAMED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_WINDOWS = re.compile(r"[A-Za-z]:\\|\\\\")


def _check_folder_text(manifest: Manifest, field: str, raw: Any) -> None:
    """A folder as written is taken as it is (relative to the manifest). Text surely meant for a shell is refused
    rather than made as a folder literally named so beside the manifest: `~` or `~/...` meant as the home folder,
    `~name` or `~name/...` as the home folder of a user this system has (`os.path.expanduser` expands it),
    `${...}`, `$NAME` of a variable set here, a Windows path (`C:\\...`, `\\\\server\\...`), and text surely meant
    for Jinja (`{{ name }}`, `{% if %}`): the folder is not a template, as `output:` is. Never refused when the
    folder it names literally is there: a folder named `Q4 $Budget`, `~drafts` or `a\\b` is a name like any other.
    A control character (an ESC, a vertical tab: what YAML makes of `"C:\\vids"` in double quotes) is refused
    wherever it is (`Manifest.control_character`).

    :raises ManifestError: at `field`.
    """
    text = str(raw)
    control = manifest.control_character((field,), text, "folder name")
    if control is not None:
        raise control
    if os.path.lexists(manifest.base_dir / text):
        return
    meant = os.path.expanduser(os.path.expandvars(text))
    example = f" ({shown(manifest.base_dir / meant)})" if meant != text else ""
    literally = (f"; or, for a folder named so, make it first (mkdir -p {typed(manifest.base_dir / text)}): "
                 "a folder that is there is taken as written")
    user = text[1:].split("/", 1)[0] if text.startswith("~") else ""
    if text == "~" or text.startswith("~/"):
        why = (f"starts with ~, which is not the home folder here: it would make a folder named ~ beside the "
               f"manifest; write the absolute path{example}, or one relative to the manifest{literally}")
    elif user and os.path.expanduser(f"~{user}") != f"~{user}":  # a user's home folder, as a shell reads ~name
        why = (f"starts with ~{shown(user)}, which is not {shown(user)}'s home folder here: it would make a folder "
               f"named ~{shown(user)} beside the manifest; write the absolute path{example}, or one relative to the "
               f"manifest{literally}")
    elif marker := next((m for m in ("{{", "{%") if m in text), None):
        vary = " (or vary the videos' file names in output:, which is a template)" if field == "outputs_dir" else ""
        why = (f"holds {marker}, but {field}: is not a template: it would make a folder named so, braces and "
               f"all; write the folder's path itself{vary}{literally}")
    elif (braced := _BRACED.search(text)) or any(m.group(1) in os.environ for m in _NAMED.finditer(text)):
        variable = braced.group(0) if braced else next(m.group(0) for m in _NAMED.finditer(text)
                                                       if m.group(1) in os.environ)
        why = (f"holds {variable}, a variable, which is not expanded here: it would name a folder literally; write "
               f"the folder's path itself{example}, absolute or relative to the manifest{literally}")
    elif _WINDOWS.match(text):
        why = ("is a Windows path: a backslash is a character of a name here, not a folder separator; write the "
               "folder's path with / between folders, absolute or relative to the manifest")
    else:
        return
    raise manifest.error((field,), f"'{shown(text)}' {why}")


def _resolved(manifest: Manifest, field: str, folder: Path) -> Path:
    """`folder` made absolute, its links followed. :raises ManifestError: a link loop on the way, a NUL byte."""
    try:
        return folder.resolve()
    except UNUSABLE as exc:
        raise manifest.error((field,) if field else (),
                             f"{shown(folder)} cannot be used as a folder: {why_unusable(exc)}") from None


def file_sha256(path: Path) -> str:
    """The SHA-256 of the regular file at `path` (an input image). :raises OSError: it cannot be read, or it is no
    longer a regular file (`images.NotRegular`: a named pipe is never read, as that would wait for a writer)."""
    h = hashlib.sha256()
    with images.open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()



def build(
    manifest: Manifest,
    caps: ProviderCaps,
    *,
    max_jobs: int | None = None,
    outputs_dir: Path | None = None,
    digest: Callable[[Path], str] = file_sha256,
    records: ImageRecords | None = None,
    unread_images: bool = False,
) -> Plan:
    """Expand, render, check and price every job of `manifest`. `records`: what the state recorded of the input
    images its done jobs sent, by which a job whose image was moved away since is planned, and found done.
    `unread_images`: a local input image not found is no error, for what only reads what runs left (`gridrun
    recover`): a job sending it whose digest no record gives is planned with `IMAGE_UNREAD` for it, a hash of no
    render, and named in `Plan.images_unread`; nothing may be sent from such a plan.

    :raises ManifestError: (or ManifestErrors, several at once) for anything invalid, before any paid call.
    """
    # Planning allocates many long-lived objects and no cycles: the cyclic collector would only rescan them.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(manifest, caps, max_jobs=max_jobs, outputs_dir=outputs_dir, digest=digest, records=records,
                      unread_images=unread_images)
    except (ManifestError, ManifestErrors) as exc:
        # A value a comment cut short is most often why planning failed (`{{ who }}` in the part cut off: jobs
        # alike, a variable unused): its warning goes with the errors, said first (`warnings`).
        # A data file read otherwise than its writer meant (separated by ';') likewise.
        exc.warnings = (*_cut_by_comments(manifest), *manifest.data_warnings, *getattr(exc, "warnings", ()))
        raise
    finally:
        if was_enabled:
            # All that planning made and keeps (the jobs) is still in the youngest generation, which the
            # collector's next pass would scan whole; moved to the oldest generation at once, it is scanned with
            # that, as rarely. Not where the calling program froze objects itself (a server before forking):
            # unfreezing would hand them back to the collector.
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


# The longest state file path SQLite opens: its unix VFS takes paths shorter than 512 bytes (MAX_PATHNAME), and
# makes its journal's beside it, "-journal" added (8 bytes).
STATE_PATH_MAX = 512 - len("-journal")

_FOLDERS = {"name": "the output folder (outputs/<name>)", "outputs_dir": "the output folder",
            "": "the state folder (.gridrun)", "state_dir": "the state folder"}


def _check_folder(manifest: Manifest, field: str, folder: Path) -> str | None:
    """A folder gridrun will make and write in: not a file, no part of it a name too long to make, and, for the
    state folder, no state file path longer than SQLite opens (`STATE_PATH_MAX`). What is
    wrong when it cannot be written (`_unwritable`): a property of the machine (a read-only checkout or mount),
    not of the manifest, which `plan` and `validate` warn of and `run` refuses (`check_writable`)."""
    what = _FOLDERS[field]
    name_max = limits(folder)[1]
    for part in folder.parts:
        if len(part.encode("utf-8", "surrogatepass")) > name_max:
            raise manifest.error((field,) if field else (), f"{what} would be named {part[:40]}…, {len(part.encode('utf-8', 'surrogatepass'))} "
                                           f"bytes: more than file systems take ({name_max}); choose a shorter one")
    problem = not_recordable(folder)
    if problem is not None:
        raise manifest.error((field,) if field else (), f"{what}: {shown(folder)}: {problem}")
    probe = folder
    try:
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
    except OSError as exc:  # a path longer than the system takes (PATH_MAX), its parts each short enough
        raise manifest.error((field,) if field else (),
                             f"{what}: {shown(folder)} cannot be used: {why_unusable(exc)}") from None
    if not probe.is_dir():
        where = f"{folder} is a file" if probe == folder else f"{folder} cannot be made: {probe} is a file"
        raise manifest.error((field,) if field else (), f"{what}: {where}, not a folder")
    if field in ("", "state_dir"):
        db = os.fsencode(folder / "state.db")
        if len(db) > STATE_PATH_MAX:
            most = f"a folder whose path is at most {STATE_PATH_MAX - len('/state.db')} bytes"
            shorter = (f"choose a shorter state_dir: {most}" if field
                       else f"move the project to a shorter path, or set state_dir: to {most}")
            raise manifest.error((field,) if field else (),
                                 f"{what}: its state file {shown(folder / 'state.db')} would be a path of {len(db):,} "
                                 f"bytes, more than SQLite opens ({STATE_PATH_MAX}: it adds -journal to it, and opens "
                                 f"no path of 512 bytes or more); {shorter}")
    return _unwritable(field, folder, probe)


def _unwritable(field: str, folder: Path, probe: Path | None = None) -> str | None:
    """What is wrong when `folder` (or, when it is not there, `probe`, its nearest folder that is, where it is
    made) cannot be written; None when it can."""
    if probe is None:
        probe = folder
        while not os.path.lexists(probe) and probe.parent != probe:
            probe = probe.parent
    if os.access(probe, os.W_OK | os.X_OK) or not probe.is_dir():
        return None
    where = f"{folder} is" if probe == folder else f"{folder} cannot be made: {probe} is"
    return f"{_FOLDERS[field]}: {where} not writable"


def _runs_unwritable(out_dir: Path) -> str | None:
    """The output folder's `.runs/`, where it is, not writable: each run writes its manifest copy there first, and
    keeps there the videos it replaces."""
    runs = out_dir / ".runs"
    if runs.is_dir() and not os.access(runs, os.W_OK | os.X_OK):
        return f"the output folder's .runs/ (each run's manifest copy, the videos runs replaced): {runs} is not writable"
    return None


def check_writable(plan: Plan, *, then: str = "run") -> None:
    """Refuse a run whose output folder, its `.runs/`, or state folder cannot be written (a read-only checkout or
    mount, no permission), before the state is opened to write or anything is sent: its videos would be paid for
    and never saved. `plan` and `validate` only warn of it. One error names every such folder, each at the field
    that names it; `then`, the command to run again once they can be written.

    :raises StateError: a folder cannot be written (exit 1, as a state that cannot be written: the manifest is
        valid).
    """
    m = plan.manifest
    out = outputs_field(m)
    state = "state_dir" if m.data.get("state_dir") else ""
    problems = ((out, _unwritable(out, plan.outputs_dir)), (out, _runs_unwritable(plan.outputs_dir)),
                (state, _unwritable(state, plan.state_dir)))
    found = [str(m.error((at,) if at else (), problem)) for at, problem in problems if problem is not None]
    if found:
        what = "it" if len(found) == 1 else "them"
        raise StateError(f"{'; '.join(found)}: nothing was recorded or sent (a read-only checkout or mount?): make "
                         f"{what} writable, or {_elsewhere([at for at, problem in problems if problem])}, then "
                         f"`gridrun {then}` again")


def _elsewhere(fields: list[str]) -> str:
    """How a manifest whose folders named by `fields` (`name` or `outputs_dir`; "" or `state_dir`) cannot be
    written runs all the same: its outputs and state put elsewhere by the manifest's own fields, which a read-only
    checkout or mount, where making a folder writable is not the user's to do, has as its one other way; or, for
    folders the manifest does not name itself, a copy of its folder."""
    named = [f for f in ("outputs_dir", "state_dir")
             if any((at in ("name", "outputs_dir")) == (f == "outputs_dir") for at in fields)]
    said = (f"set {' and '.join(f + ':' for f in named)} in the manifest to "
            f"{'a folder' if len(named) == 1 else 'folders'} that can be written (an absolute path works)")
    if all(at in ("", "name") for at in fields):
        said += ", or run a copy of the manifest's folder that can be written"
    return said


def outputs_field(manifest: Manifest) -> str:
    """The manifest field that names its output folder: `outputs_dir`, else `name` (outputs/<name>)."""
    return "outputs_dir" if manifest.data.get("outputs_dir") else "name"


# The files a run (report.html) and `gridrun export` (results.*) write in the output folder.
_WRITTEN_BESIDE = ("report.html", "results.csv", "results.json", "results.jsonl")


def _foreign_files(manifest: Manifest, out_dir: Path) -> list[Warned]:
    """A warning for each file in the output folder where gridrun writes its report or its exports that gridrun
    did not write (`foreign_file`): kept under .runs/superseded/files/ before gridrun's takes its place."""
    found = [name for name in _WRITTEN_BESIDE if foreign_file(out_dir / name)]
    if not found:
        return []
    names = ", ".join(found)
    return [manifest.warning((outputs_field(manifest),), (
        f"{out_dir} holds {names}, which gridrun did not write: the report or export that takes "
        f"{'its' if len(found) == 1 else 'their'} place keeps {'it' if len(found) == 1 else 'them'} under "
        ".runs/superseded/files/ first"))]


def refuse_own_links(manifest: Manifest, out_dir: Path) -> None:
    """Refuse an output folder one of whose folders gridrun keeps for itself (`.runs/`, `OWN_FOLDERS`) is a link:
    checked as the plan is made, and again where a run makes them, before it writes in them.

    :raises ManifestError: at the manifest's field that names the output folder.
    :raises StateError: the output folder's lock `.runs/lock` is a link: a file gridrun will not write through, as
        for the state folder's lock (`Store.acquire_lock`), refused the same way (exit 1), the manifest being valid.
    """
    found = own_folder_link(out_dir)
    if found is None:
        return
    if found[2] == "lock":
        raise StateError(own_link_said(found))
    raise manifest.error((outputs_field(manifest),), own_link_said(found))


def folder_error(manifest: Manifest, folder: Path, exc: OSError) -> ManifestError:
    """The error, at the manifest's field that names it, for an output folder the system would not make."""
    return manifest.error((outputs_field(manifest),), f"the output folder {folder} cannot be made: {exc.strerror or exc}")


class _Found(NamedTuple):
    """The files `_check_paths` found in the way of the jobs' (`overwrites` tells which a run keeps aside): video
    paths where a file sits, with no sidecar beside it (`occupied`) or with one (`sidecared`), and video paths whose
    poster's place holds a file (`posters`); and, in the folders listed, files named as gridrun's temporary files
    (`temps`: a write killed before its rename left them)."""

    occupied: list[str]
    sidecared: list[str]
    posters: list[str]
    temps: list[str]


def _lists_kept_whole(matrix: Mapping[str, Any] | None, list_params: Collection[str],
                      written: Collection[str]) -> list[tuple[tuple[Any, ...], str]]:
    """(path in the matrix, warning) for each list under an include key that names no axis and that a template
    wrote whole into text (`written`, the names whose list the sweep's templates wrote so): only an axis's key
    expands into an entry per value, so `light: [dusk, dawn]` beside `style: [anime, comic]` makes two jobs, not
    four, each with the whole list, written into a prompt as Python writes it (`['dusk', 'dawn']`). A list the
    templates only join or loop over (`{{ tags | join(', ') }}`), or that none reads, is meant as a list; so is the
    value of a request parameter that takes a list (`list_params`, input images)."""
    if not isinstance(matrix, Mapping) or not isinstance(matrix.get("include"), list):
        return []
    axes = {gh_fold(k) for k in matrix if isinstance(k, str) and k not in ("include", "exclude", "zip")}
    for group in matrix.get("zip") or ():
        if isinstance(group, Mapping):
            axes.update(gh_fold(k) for k in group if isinstance(k, str))
    found: list[tuple[tuple[Any, ...], str]] = []
    for i, entry in enumerate(matrix["include"]):
        if not isinstance(entry, Mapping):
            continue
        for key, value in entry.items():
            if (isinstance(key, str) and isinstance(value, list) and value and gh_fold(key) not in axes
                    and key not in list_params and key in written):
                text = repr(value)
                text = text if len(text) <= 60 else text[:57] + "..."
                found.append(((("include", i, key)), (
                    f"'{key}' is no axis, so this list is kept as one value, and a template writes it whole: the text "
                    f"gets {text}, as Python writes a list; only an axis's key expands, into an entry per value; for a "
                    f"job per value, make {key} an axis, or write an include entry per value; for the values as text, "
                    f"write {{{{ {key} | join(', ') }}}}")))
    return found


_POSIX = os.path is posixpath


def _alike_requests(jobs: Sequence[Job]) -> list[tuple[str, str, str, Any, Any]]:
    """The jobs whose request is an earlier job's but for Unicode form or an invisible character in a parameter's
    text (two rows told apart by an id column, their prompts "café" written composed in one and not in the other):
    for each, the earlier's key, its own, the parameter, and its value in each. The usual plan has no text that
    reads otherwise: its requests are not compared."""
    if not any(_reads_otherwise(j.params) for j in jobs):
        return []
    first_of: dict[tuple[int, str], Job] = {}
    found = []
    for j in jobs:
        earlier = first_of.setdefault((j.repeat, canonical(alike_value(dict(j.params)))), j)
        if earlier is not j:
            param = next(k for k, v in j.params.items() if canonical(v) != canonical(earlier.params.get(k)))
            found.append((earlier.key, j.key, param, earlier.params.get(param), j.params[param]))
    return found


def _reads_otherwise(params: Mapping[str, Any]) -> bool:
    """Whether a parameter's text is written otherwise than it reads (`alike`: another Unicode form, an invisible
    character)."""
    for v in params.values():
        if type(v) is str:
            if not v.isascii() and alike(v) != v:
                return True
        elif isinstance(v, (dict, list)) and alike_value(v) is not v:
            return True
    return False


def _check_paths(manifest: Manifest, jobs: Sequence[Job], out_dir: Path, path_max: int = PATH_MAX) -> _Found:
    """Every job's video can be written where the plan puts it: its path (with `.part`) not too long, and no
    file (a video of an earlier manifest, say) where one of its folders must be. Otherwise the job would be
    paid for and its video never saved. No job's files go in the state folder or over the manifest, nor its
    sidecar over a JSON file that is not one. Returns the files found where a job's video or poster goes: none
    looked for in a folder that is not there (a new manifest's), which costs no look per job."""
    field = ("output",) if "output" in manifest.data else ()
    checked: set[str] = {str(out_dir)}
    # compared as case-insensitive file systems (macOS) compare names: `.GRIDRUN/state.db` is the
    # state's file there
    state, out = fold(str(state_dir_of(manifest).resolve())), fold(str(out_dir))
    near = out == state or state.startswith(out.rstrip(os.sep) + os.sep) or out.startswith(state + os.sep)
    mine = fold(str(Path(manifest.path).resolve()))
    guard = near or mine.startswith(out.rstrip(os.sep) + os.sep)
    found = _Found([], [], [], [])
    folders: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str]] | None] = {}
    superseded = str(superseded_dir(out_dir))
    real_out = os.path.realpath(out_dir)
    # Where a run keeps the file a job's video replaces: .runs/superseded/<hash[:16]>/<sha256[:16]>/<name>
    aside_bytes = len(os.fsencode(superseded)) + 2 * (1 + 16) + 1
    plain = fs_encoding() is None  # names are UTF-8, which writes any path: none is looked at for it
    # A path this short leaves room for all the download writes, and for the file it replaces kept aside
    # (a character is at most 4 bytes); its name need not be measured.
    short = path_max - aside_bytes - _WRITTEN_SLACK
    for job in jobs:
        video = job.output_str
        if not plain and (cannot := unnameable(video)) is not None:  # before any look at it, which would fail on the name
            # escaped, as the character named: an output in this locale cannot show `caf\xe9.mp4` either
            raise manifest.error(field, f"job {job.key!a} would write {ascii(video)[1:-1]}: {cannot}")
        if guard:
            part, sidecar, poster = files_beside(video)
            for path in (video, sidecar, poster, part):
                folded = fold(path)
                if folded == mine or near and (folded + os.sep).startswith(state + os.sep):
                    what = "the manifest" if folded == mine else "the state folder, which holds what was paid for"
                    raise manifest.error(field, f"job {job.key!r} would write {path}, in {what}; change output"
                                                + (" or outputs_dir" if "outputs_dir" in manifest.data else ""))
        if _POSIX:  # `os.path.dirname` as posixpath makes it, without its calls: a plan asks it of every job
            where = video[:video.rfind("/") + 1]
            if where and where != "/" * len(where):
                where = where.rstrip("/")
        else:
            where = os.path.dirname(video)
        folder = where
        while folder not in checked:
            checked.add(folder)
            try:
                linked = stat.S_ISLNK(os.lstat(folder).st_mode)
            except OSError:  # not there: made as a folder
                folder = os.path.dirname(folder)
                continue
            # A link is followed as the files are written: where it leads must be in the output folder (the
            # links above it are checked as they are walked up to).
            if linked and (target := leads_out(folder, real_out)) is not None:
                raise manifest.error(field, f"job {job.key!r} would write {relpath(Path(job.output_str), out_dir)} "
                                            f"through {relpath(Path(folder), out_dir)}/, a link to {target}, outside "
                                            f"the output folder {out_dir}; replace the link with a folder, or point "
                                            "outputs_dir: at the place it leads to")
            if not os.path.isdir(folder):
                raise manifest.error(field, f"job {job.key!r} would write {relpath(Path(job.output_str), out_dir)}, "
                                            f"but {folder} is a file (or a broken link), not a folder; move it, or "
                                            "change output")
            folder = os.path.dirname(folder)
        if where not in folders:
            folders[where] = _listing(where)
            if folders[where] is not None:  # the same listing: no look of its own
                found.temps.extend(os.path.join(where, n) for n in folders[where][1] if own_temp(n) is not None)
        listing = folders[where]
        if listing is not None:  # else the folder is not there yet (a new manifest's): nothing in it to find
            _check_beside(manifest, field, job, files_beside(video), listing, found)
        if len(video) * 4 < short:
            continue
        name = os.path.basename(video)
        if max(len(video) * 4, aside_bytes + len(name) * 4) + _WRITTEN_SLACK >= path_max:
            aside = os.path.join(superseded, job.hash[:16], "0" * 16, name)
            longest = max(len(os.fsencode(path)) for path in (*_written(files_beside(video)), *_kept_written(aside)))
            if longest >= path_max:
                raise manifest.error(field, f"job {job.key!r} would write a path of {longest:,} bytes (with the "
                                            f"download's and the sidecar's temporary names, and the file its video "
                                            "replaces kept in .runs/superseded/), more than "
                                            f"file systems open ({path_max - 1:,}); shorten output"
                                            + (" or outputs_dir" if "outputs_dir" in manifest.data else ""))
    return found


def _check_beside(manifest: Manifest, field: tuple[str, ...], job: Job, beside: tuple[str, str, str],
                  listing: tuple[frozenset[str], frozenset[str], frozenset[str]], found: _Found) -> None:
    """What a job's video and the files beside it (`files_beside`) would replace in its folder, which is there
    (`listing`: the names of the folders in it, of the other entries, and of those no regular file): a folder, a
    named pipe, a socket or a device (or a link to one), or a JSON file gridrun did not write at the sidecar's name. A file at the video's path is added to `found` (with no sidecar beside it, or
    with one), and so is the video's path when a file holds its poster's place (known from the listing)."""
    video = job.output_str
    sidecar, poster = beside[1], beside[2]
    subfolders, others, odd = listing
    if os.path.basename(poster) in others:
        found.posters.append(video)
    try:
        mode = os.stat(video).st_mode
    except OSError:  # nothing there (or nothing to see): the usual case
        if os.path.isfile(sidecar) and gridrun_sidecar(Path(video)) is None:
            raise manifest.error(field, f"job {job.key!r} would write its sidecar {sidecar} over a JSON file "
                                        "gridrun did not write; move it, or change output") from None
    else:
        if stat.S_ISDIR(mode):
            raise manifest.error(field, f"job {job.key!r} would write {video}, which is a folder; move it, "
                                        "or change output")
        if not stat.S_ISREG(mode):
            raise manifest.error(field, f"job {job.key!r} would write {_special_said(video, mode)}")
        (found.sidecared if os.path.exists(sidecar) else found.occupied).append(video)
    folder_at = _folder_beside(beside, subfolders)
    if folder_at is not None:
        raise manifest.error(field, f"job {job.key!r} would write {folder_at}, which is a folder; move it, "
                                    "or change output")
    for path in beside if odd else ():
        if os.path.basename(path) in odd:
            try:
                mode = os.stat(path).st_mode
            except OSError:  # a broken link: replaced, as nothing there is
                continue
            if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
                raise manifest.error(field, f"job {job.key!r} would write {_special_said(path, mode)}")


def _special_said(path: str, mode: int) -> str:
    """`path`, where a job writes, and what holds it (`mode`: what `os.stat` found there, a link followed): a
    named pipe, a socket or a device, which no file gridrun writes may replace unseen, nor may it be read (opening
    a named pipe waits for a writer, a device reads without end); with what to do."""
    what = images.special_kind(mode) or "not a regular file"
    if os.path.islink(path):
        return f"{path}, a link to {os.path.realpath(path)}, which is {what}; remove the link, or change output"
    return f"{path}, which is {what}; remove it, or change output"


_BREAK_NAMES = {"\x85": "a NEL (U+0085)", "\u2028": "a U+2028 (line separator)",
                "\u2029": "a U+2029 (paragraph separator)"}


def _read_otherwise(manifest: Manifest) -> list[str]:
    """A warning at the first string of the manifest's file that gridrun read otherwise before it broke lines as
    YAML 1.2 does (`yamlsource.read_otherwise_before`): an unchanged manifest's jobs that use it are new jobs,
    sent and paid for again, which the plan alone would call changed with no word of why."""
    if not manifest.text:
        return []
    found = read_otherwise_before(manifest.text, Path(manifest.display or manifest.path))
    if not found:
        return []
    (path, char), rest = found[0], len(found) - 1
    more = f" ({rest:,} more {'value holds' if rest == 1 else 'values hold'} one further on)" if rest else ""
    return [manifest.warning(path, (
        f"holds {_BREAK_NAMES[char]}{more}, which an earlier gridrun read as a line break (a space in a quoted "
        "string, the end of a plain one) and this one keeps as text, as YAML 1.2 reads it: jobs using it are new jobs, "
        "sent and paid for again, not the ones run before; to send what was sent before, write a space in its "
        "place"))]


_NOT_TEXT = frozenset({"file", "range", "exclude"})


def _free_text(path: tuple[Any, ...]) -> bool:
    """`path` (in a manifest) is a value of free text: a prompt or negative prompt, a var's value, a matrix value
    (not a data file's name, a range's bounds or an exclude entry)."""
    if any(part in _NOT_TEXT for part in path):
        return False
    at = next((i for i, part in enumerate(path) if part in ("params", "vars", "matrix")), None)
    if at is None or len(path) <= at + 1:
        return False
    return path[at] != "params" or path[at + 1] in ("prompt", "negative_prompt")


def _cut_by_comments(manifest: Manifest) -> list[str]:
    """A warning at each unquoted free-text value of the manifest a comment cuts short (`prompt: shot #3 of the
    series`, `yamlsource.cut_by_comments`): YAML ends the value before ` #`, and what follows on the line is neither
    read nor sent, though it was most likely meant as text. Placed where the value is written: an anchor's line,
    not that of an alias that repeats it (where there is nothing to quote)."""
    if not manifest.text or "#" not in manifest.text:
        return []
    warnings = []
    for path, value, comment, (line, column) in cut_by_comments(manifest.text, _free_text):
        tail = value if len(value) <= 40 else "..." + value[-37:]
        rest = comment if len(comment) <= 40 else comment[:37] + "..."
        message = (f"the text from {rest!r} on is a YAML comment (a ' #' starts one), so the value ends at {tail!r} "
                   "and the rest of the line is not sent; quote the value to keep it")
        warned = manifest.warning(path, message)
        if manifest.where(path)[0] != line:  # the path's key is elsewhere: the value's own place
            warned = Warned(str(ManifestError(message, file=manifest.display or manifest.path, line=line,
                                              column=column, field=dotted(path))), warned.plain)
        warnings.append(warned)
    return warnings


_FORMULA_WARNINGS = 10


def _formula_errors_sent(manifest: Manifest, jobs: Sequence[Job]) -> list[Warned]:
    """The warning at each data file's row whose cell is a spreadsheet's formula error (`#REF!`, `#N/A`: the text
    a sheet exports for a formula that failed) that a job's request holds: it would be paid for as it is, which no
    one means. A warning, not a refusal: a plan that ran such a job plans as before."""
    flagged = {axis: lines.flagged for axis, lines in manifest.data_lines.items() if lines.flagged}
    if not flagged:
        return []
    by_value: dict[int, list[tuple[tuple[Any, ...], Flagged]]] = {}
    for axis, found in flagged.items():
        node: Any = manifest.data
        for step in axis:
            node = node[step]
        for flag in found:
            by_value.setdefault(id(node[flag.index]), []).append((axis, flag))
    said: dict[tuple[tuple[Any, ...], int, str | None], Warned] = {}
    for job in jobs:
        for _, value in job.values:
            for axis, flag in by_value.get(id(value), ()):
                if (axis, flag.index, flag.column) in said:
                    continue
                sent = next((name for name, v in job.params.items()
                             if any(flag.text in text for text in param_strings({name: v}))), None)
                if sent is None:
                    continue
                cell = "the value" if flag.column is None else f"its cell in column '{escaped(flag.column)}'"
                said[(axis, flag.index, flag.column)] = manifest.warning(
                    (*axis, flag.index),
                    f"{cell} is '{flag.text}', a spreadsheet's formula error, and job {job.key} sends it in "
                    f"its {sent}: it would be paid for as it is; fix the sheet and export the file again")
    warnings = list(said.values())
    if len(warnings) > _FORMULA_WARNINGS:
        rest = len(warnings) - _FORMULA_WARNINGS
        last = warnings[_FORMULA_WARNINGS - 1]
        more = f" (and {rest:,} more such value{'' if rest == 1 else 's'} of the data files)"
        warnings = [*warnings[:_FORMULA_WARNINGS - 1], Warned(last + more, last.plain + more)]
    return warnings


def warnings_of(plan: Plan, diff: Diff | None) -> tuple[str, ...]:
    """What `gridrun plan` and `gridrun run` warn of before anything is sent: the plan's warnings, its files in the
    way (`overwrites`), and the state's (`diff`, None where nothing has run yet)."""
    return (*plan.warnings, *told_read_otherwise(plan, diff), *overwrites(plan, diff), *disk_short(plan, diff),
            *(diff.warnings if diff else ()))


# What a video takes on disk per pixel of its frame and second of its length, where no earlier take of the plan
# tells it (`disk_short`): 9 bits, what H.264 at 30 frames a second writes at 0.3 bits a pixel, above what the
# providers' clips weigh (5 s of 1080p: about 12 MB), so that the room needed is not underestimated.
VIDEO_BYTES_PER_PIXEL_SECOND = 1.125
# What a job writes beside its video: its poster (a JPEG of its first frame scaled to at most POSTER_MAX_WIDTH wide,
# `outputs.poster_size`, counted at 2 bits a pixel) and its sidecar.
POSTER_BYTES_PER_PIXEL = 0.25
SIDECAR_BYTES = 4096
# The earlier takes (done videos of the plan's jobs) whose sizes are looked at, at most.
_TAKES_WEIGHED = 64


def disk_short(plan: Plan, diff: Diff | None) -> list[str]:
    """The warning of an output folder whose disk has less room free than the videos a run of `plan` writes are
    expected to take (`need_bytes`): the run would meet a full disk part way (it stops there; a run with room goes
    on from where it stopped); none where there is room, or the free space is not known. A warning, not a refusal: the figure is an
    estimate."""
    need, videos, basis = need_bytes(plan, diff)
    if not need:
        return []
    import shutil

    folder = plan.outputs_dir
    while not os.path.isdir(folder) and folder.parent != folder:  # not made yet: the disk it would be made on
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except (OSError, ValueError):
        return []
    if free >= need:
        return []
    m = plan.manifest
    return [m.warning((outputs_field(m),), f"the {videos:,} video{'s' if videos != 1 else ''} a run writes may "
                                           f"take about {_bytes_said(need)} ({basis}), and the disk holding "
                                           f"{shown(plan.outputs_dir)} has {_bytes_said(free)} free: free space "
                                           "there, or give the manifest an output folder on a disk with room "
                                           "(`outputs_dir:`); a run that meets a full disk stops there, and "
                                           "`gridrun run` with room goes on from where it stopped (what was sent is "
                                           "fetched at no new cost)")]


def need_bytes(plan: Plan, diff: Diff | None) -> tuple[int, int, str]:
    """What the files a run of `plan` writes in its output folder are expected to take: (bytes, videos, on what
    the figure rests). The videos it sends for, follows, downloads again or copies to a new path (not those
    cached where they are, nor the settled jobs it leaves), each weighed by its frame's pixels and its seconds at
    the most bytes any earlier take of the plan weighs so (its done videos, up to `_TAKES_WEIGHED` of them), or
    without one at `VIDEO_BYTES_PER_PIXEL_SECOND`; with its poster and sidecar."""
    copied = {new for _, new in diff.copied} if diff is not None else set()
    written = [j for j in plan.jobs if diff is None or j.output_str in copied or j.key not in diff.kept]
    if not written:
        return 0, 0, ""
    rate, weighed = 0.0, 0
    if diff is not None and diff.verified:
        for job in plan.jobs:
            if weighed >= _TAKES_WEIGHED:
                break
            if job.output_str not in diff.verified or not job.duration or not job.size[0] * job.size[1]:
                continue
            try:
                size = os.stat(job.output_str).st_size
            except (OSError, ValueError):
                continue
            weighed += 1
            rate = max(rate, size / (job.size[0] * job.size[1] * float(job.duration)))
    rate = rate if weighed else VIDEO_BYTES_PER_PIXEL_SECOND
    shapes = Counter((j.size, j.duration) for j in written)  # a few shapes for thousands of jobs: each weighed once
    width, height = max((size for size, _ in shapes), key=lambda size: size[0] * size[1])
    per_second = _bytes_said(rate * width * height)
    basis = (f"at {per_second} a second of {width}x{height} video, "
             + (f"as the largest of {weighed:,} earlier take{'s' if weighed != 1 else ''} of its jobs weighs" if weighed
                else "a generous figure: no earlier take of its jobs to weigh"))
    need = sum(count * (size[0] * size[1] * float(duration or 0) * rate + _poster_bytes(*size) + SIDECAR_BYTES)
               for (size, duration), count in shapes.items())
    return int(need), len(written), basis


def _poster_bytes(width: int, height: int) -> float:
    """What the poster of a video of `width` x `height` is expected to take: its scaled size's pixels
    (`outputs.poster_size`) at POSTER_BYTES_PER_PIXEL."""
    width, height = poster_size(width, height)
    return width * height * POSTER_BYTES_PER_PIXEL


def _bytes_said(count: float) -> str:
    """A number of bytes as a warning of room says it: "1.2 GB", "350.0 MB", "6.1 KB" (below 1 MB, which would
    read 0.0 MB)."""
    if count >= 1e9:
        return f"{count / 1e9:,.1f} GB"
    return f"{count / 1e6:,.1f} MB" if count >= 1e6 else f"{count / 1e3:,.1f} KB"


def told_read_otherwise(plan: Plan, diff: Diff | None) -> tuple[str, ...]:
    """The plan's warning of a string an earlier gridrun read otherwise (`_read_otherwise`), where it tells something:
    while jobs of the state's last run have other contents now (`Diff.changed`), as a run of such a manifest made
    by that gridrun left them. With no state, or once a run has sent the text as it is now read, nothing was or is
    paid again for it, and the warning is not told."""
    return plan.read_otherwise if diff is not None and diff.changed else ()


def overwrites(plan: Plan, diff: Diff | None) -> list[str]:
    """The warnings of files a run replaces that gridrun may not have written, which a run keeps under
    .runs/superseded/ before a download replaces them: at a job's video path, with no sidecar beside them, and
    not the video the state records there with its SHA-256 (a done job whose sidecar alone is missing, which
    the run writes again); and, their sidecar beside them, a done job's video edited or replaced in place.
    `diff` (None: no state yet) already hashed those videos. A file with a sidecar beside it that is no done
    job's recorded take at that path (another manifest's, another state's) is not hashed to plan, which would
    read every video again: it is warned of when its sidecar names a render the state has no record of (event
    unrecorded-kept), as is an image with no poster mark where a job's poster goes (event foreign-kept), each
    kind once (`Diff.aside`; with no state, every sidecar of gridrun's names one)."""
    own = diff.verified if diff is not None else frozenset()
    foreign = [path for path in plan.occupied if path not in own]
    occupied = frozenset(plan.occupied)
    altered = [path for path in diff.altered if path not in occupied] if diff is not None else []
    m = plan.manifest
    field = ("output",) if "output" in m.data else ()
    then = "a run keeps it under .runs/superseded/ in the output folder before the job's video takes its place"
    warnings = []
    if foreign:
        warnings.append(m.warning(field, f"a job would write over {foreign[0]}{_more(foreign)}, with no sidecar "
                                         f"beside it: a file gridrun may not have written; {then}"))
    if altered:
        warnings.append(m.warning(field, f"a job would write over {altered[0]}{_more(altered)}, which no longer "
                                         f"holds the video its sidecar records (edited or replaced in place): {then}"))
    aside = _aside(plan, diff)
    same = _made_for_these(plan, aside.unrecorded) if diff is None else []
    if same:
        money = sum(j.cost_micros for j in same)
        have, them, those, their = ("has", "it", "that video", "its") if len(same) == 1 else (
            "have", "them", "those videos", "their")
        warnings.append(m.warning(field, f"no state at {plan.state_dir} yet, and {len(same):,} of these jobs "
                                         f"{have} a video of gridrun's in {plan.outputs_dir} made for the very same "
                                         f"request (its sidecar records the job's hash: {same[0].output_str}"
                                         f"{_more(same)}), rendered by another state (a clone's, a copied project's, "
                                         f"a state begun again): a run here sends and pays for {them} again "
                                         f"({usd_text(money)}), keeping {those} under .runs/superseded/; "
                                         f"to use {them}, run where {their} state is, or bring it here (its state "
                                         "folder, or `state_dir:` naming it)"))
    told = {j.output_str for j in same}
    unrecorded = [v for v in aside.unrecorded if v not in told]
    if unrecorded:
        first, more = unrecorded[0], _more(unrecorded)
        warnings.append(m.warning(field, f"a job would write over {first}{more}, a video of gridrun's that this state "
                                         "did not render (another state's run wrote it: another state_dir, a copied "
                                         f"project, a state begun again): {then}"))
    if aside.left:
        first, more = aside.left[0], _more(aside.left)
        doc = gridrun_sidecar(Path(first))
        one = len(aside.left) == 1
        made = f"by run {doc['run_id']} " if doc is not None and isinstance(doc.get("run_id"), int) else ""
        money = sum(j.cost_micros for j in plan.jobs if j.output_str in set(aside.left))
        warnings.append(m.warning(field, f"a job would write over {first}{more}, {'a video' if one else 'videos'} "
                                         f"this state made ({made}under its own key, "
                                         f"{'its sidecar says' if one else 'their sidecars say'}) that `gridrun "
                                         f"recover` left as {'it was' if one else 'they were'}: "
                                         f"{_left_why(aside)}; a run keeps "
                                         f"{'it' if one else 'them'} under .runs/superseded/ in the output folder "
                                         f"and renders {'its job' if one else 'their jobs'} again, paying "
                                         f"{usd_text(money)} for {'it' if one else 'them'}. To pay nothing, put "
                                         f"back {'the video and its sidecar' if one else 'each video and sidecar'} "
                                         "as the download wrote them (from a backup or a copy) and run `gridrun "
                                         f"recover {m.path}` again, which records "
                                         f"{'its job' if one else 'their jobs'} done"))
    if aside.others:
        first, more = aside.others[0], _more(aside.others)
        doc = gridrun_sidecar(Path(first))
        made = f"by run {doc['run_id']} " if doc is not None and isinstance(doc.get("run_id"), int) else ""
        whose = f" (made {made}as {doc['key']}, its sidecar says)" if doc is not None and doc.get("key") else ""
        warnings.append(m.warning(field, f"a job would write over {first}{more}, another job's video{whose}, made for "
                                         "another request: a copy an earlier run left there (a sweep renamed, another "
                                         "output template); the job's own video replaces it once downloaded, and "
                                         "until then it is not that job's video"))
    if aside.own:
        first, more = aside.own[0], _more(aside.own)
        doc = gridrun_sidecar(Path(first))
        made = _made_by(aside.own, doc)
        one = len(aside.own) == 1
        then = doc or {}
        what = next((f"{k}: {then[k]} then, {now} now" for k, now in (("provider", m.provider), ("model", m.model))
                     if then.get(k) not in (None, now)), "its request changed since")
        warnings.append(m.warning(field, f"{first}{more} {'holds its job' if one else 'hold their jobs'}' own earlier "
                                         f"take{'' if one else 's'}, made{made} for what the job asked then "
                                         f"({what}): the state keeps a copy under .runs/superseded/, and the "
                                         "job's new video replaces it once downloaded"))
    if aside.images:
        first, more = aside.images[0], _more(aside.images)
        warnings.append(m.warning(field, f"a job's poster would replace {first}{more}, an image with no poster mark "
                                         "of gridrun's (a poster an older gridrun wrote, or an image of yours): a "
                                         "run keeps it under .runs/superseded/ in the output folder "
                                         "before the job's video and its poster take its place"))
    return warnings


def _made_by(videos: Sequence[str], first: Mapping[str, Any] | None) -> str:
    """" by run 2", " by runs 1 and 2": the runs the sidecars of `videos` say made them (`first`: the first one's,
    read already), each named once, in order; "" when no sidecar names one."""
    runs: dict[int, None] = {}
    for n, video in enumerate(videos):
        doc = first if n == 0 else gridrun_sidecar(Path(video))
        if doc is not None and isinstance(doc.get("run_id"), int) and not isinstance(doc.get("run_id"), bool):
            runs[doc["run_id"]] = None
    ids = [str(r) for r in sorted(runs)]
    if not ids:
        return ""
    if len(ids) == 1:
        return f" by run {ids[0]}"
    shown = ids[:5] if len(ids) <= 5 else [*ids[:4], f"{len(ids) - 4:,} more"]
    return f" by runs {', '.join(shown[:-1])} and {shown[-1]}"


def _left_why(aside: Aside) -> str:
    """Why `gridrun recover` did not adopt `aside.left`, takes of this state's whose records it lost, in words: a
    sidecar holding a figure no download writes (`left_out_of_range`), or else (the video not hashed to plan; the
    recover did) a video whose bytes changed since its download."""
    videos = aside.left
    wrong = len(aside.left_out_of_range)
    edited = len(videos) - wrong
    why = []
    if edited:
        why.append("its bytes are no longer those its sidecar records (edited or cut short since)" if len(videos) == 1
                   else f"{edited:,} whose bytes are no longer those their sidecars record (edited or cut short since)")
    if wrong:
        why.append("its sidecar holds a figure out of range" if len(videos) == 1
                   else f"{wrong:,} whose sidecars hold a figure out of range")
    return ", ".join(why)


def _made_for_these(plan: Plan, videos: Sequence[str]) -> list[Job]:
    """Of the jobs of `plan`, those whose video path holds one of `videos` (files of gridrun's that no state here
    rendered) whose sidecar records the job's own hash: a video made for the very same request."""
    if not videos:
        return []
    by_path = {j.output_str: j for j in plan.jobs}
    same = []
    for video in videos:
        job = by_path.get(video)
        doc = gridrun_sidecar(Path(video)) if job is not None else None
        if job is not None and doc is not None and doc["hash"] == job.hash:
            same.append(job)
    return same


def _aside(plan: Plan, diff: Diff | None) -> Aside:
    """What of the files in the way a run keeps aside that `overwrites` tells apart: `diff.aside`, looked at against
    the state; with no state, the sidecars' and images' own (no render is recorded); none when `diff` was not made
    though there is a state (`validate`, which does not read it)."""
    if diff is not None:
        return diff.aside
    if (plan.state_dir / "state.db").exists():
        return NOTHING_ASIDE
    return kept_aside(plan.sidecared, plan.posters, skip_videos=(), skip_posters=(), renders=lambda _: ())


def _more(paths: Sequence[str]) -> str:
    return f" and {len(paths) - 1:,} more" if len(paths) > 1 else ""


def _folder_beside(beside: tuple[str, str, str], subfolders: frozenset[str]) -> str | None:
    """The first of the files a job's download writes beside its video (`beside`, `files_beside`: its `.part`,
    its sidecar, its poster) where a folder stands, or None: a folder there is found only after the job is paid
    for, and the video can be saved on no later run either. `subfolders`: the folders in the video's folder (one
    listing of each output folder, not three checks a job)."""
    if not subfolders:
        return None
    return next((path for path in beside if os.path.basename(path) in subfolders and os.path.isdir(path)), None)


def _listing(folder: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]] | None:
    """The names of the folders (or links to folders) in `folder`, of its other entries, and of those of them
    that are neither a regular file nor a link to one (a named pipe, a device, a socket, a broken link) (one
    listing: only a link is looked at); none when it cannot be listed, and None when it is not there (nor, then,
    is anything in it)."""
    try:
        with os.scandir(folder) as entries:
            names = [(e.name, e.is_dir(), e.is_file()) for e in entries]
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return frozenset(), frozenset(), frozenset()
    return (frozenset(n for n, is_dir, _ in names if is_dir), frozenset(n for n, is_dir, _ in names if not is_dir),
            frozenset(n for n, is_dir, is_file in names if not is_dir and not is_file))


_TMP = ".{}.4194304.18446744073709551615.tmp"
"""The name of a sidecar's or poster's temporary file (`atomic_write`), with the largest process and thread ids."""

_WRITTEN_SLACK = len(_TMP.format("")) + len(".json")
"""The most bytes a path the download writes (`_written`) has beyond its video's: a temporary file's dots and
ids around a name whose `.json` may stand where the video's name had no extension (`tmp_stem` only shortens)."""


def _keys_written(manifest: Manifest) -> list[ManifestError]:
    """The errors of the manifest's values that hold an API key this process holds (`bugs.key_values`): pasted
    into `params:` it would be sent in each request's body, and kept in the state, the sidecars, the report and
    `.runs/`'s copies of the manifest; a key goes in the environment. Named by its variable, never shown."""
    from .bugs import key_values

    keys = key_values()
    if not keys:
        return []
    found: list[ManifestError] = []
    headers: set[tuple[Any, ...]] = set()  # the axes read from a .csv file whose header row holds a key

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        if isinstance(value, str):
            var = key_held(value, keys)
            if var is not None:
                found.append(manifest.error(path, KEY_AS_VALUE.format(var=var)))
        elif isinstance(value, Mapping):
            for k, v in value.items():
                if (var := key_held(k, keys)) is not None:
                    header = _csv_header(manifest, path)
                    if header is not None:  # a .csv file's column: once, at its header row, the axis named
                        axis, lines = header
                        if axis not in headers:
                            headers.add(axis)
                            found.append(ManifestError(KEY_AS_COLUMN.format(var=var), file=lines.file,
                                                       line=lines.header[0], column=lines.header[1], field=dotted(axis)))
                        continue
                    # at the key's line, the mapping named: the key is the field's name, which is never shown
                    at = manifest.error((*path, k), "")
                    found.append(ManifestError(KEY_AS_NAME.format(var=var), file=at.file, line=at.line,
                                               column=at.column, field=dotted(path)))
                    continue
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))

    walk(manifest.data, ())
    return found + _keys_in_comments(manifest, keys)


# What is said of a .csv data file's header row that names a column by an API key this process holds.
KEY_AS_COLUMN = ("a column name in the header row holds the value of {var} (an API key, not shown): a key goes in the "
                 "environment, never a data file, whose rows the state keeps, column names too; take it out")


def _csv_header(manifest: Manifest, path: tuple[Any, ...]) -> tuple[tuple[Any, ...], DataLines] | None:
    """Of the mapping at `path`, a row of a .csv data file: the axis read from it and where it was read (its header
    row's line in `header`); None for any other mapping."""
    lines = manifest.data_lines.get(path[:-1]) if path else None
    if lines is None or lines.header is None or type(path[-1]) is not int:
        return None
    return path[:-1], lines


def _keys_in_comments(manifest: Manifest, keys: Mapping[str, str]) -> list[ManifestError]:
    """The errors of the manifest's lines whose comments hold an API key of `keys` (`# key: sk-...`): a run keeps
    the manifest's text whole, comments too, in the state and in `.runs/` beside the videos. Found as a key in the
    text outside every scalar YAML reads (a key in a value is `_keys_written`'s); one error a line, named by the
    key's variable, never shown. Looked for only in a text that holds a key at all."""
    text = manifest.text
    held = [key for key in keys if key in text]
    if not held:
        return []
    from .yamlsource import KEY_IN_TEXT, line_and_column, named_spans, scalar_spans

    spans, named = scalar_spans(text), named_spans(text)
    if spans is None or named is None:
        return []
    kinds = {"a comment": "comments", "an anchor": "anchors", "an alias": "aliases", "a tag": "tags"}
    lines: dict[int, tuple[int, str, str]] = {}
    for key in held:
        at = text.find(key)
        while at >= 0:
            if not any(start <= at < end for start, end in spans):
                line, column = line_and_column(text, at)
                where = next((what for start, end, what in named if start <= at < end), "a comment")
                lines.setdefault(line, (column, keys[key], where))
            at = text.find(key, at + 1)
    return [ManifestError(KEY_IN_TEXT.format(where=where, var=var, kind=kinds[where]),
                          file=manifest.display or manifest.path, line=line, column=column)
            for line, (column, var, where) in sorted(lines.items())]


def _written(beside: tuple[str, str, str]) -> list[str]:
    """The longest paths a job's download writes, given the files beside its video (`files_beside`): its .part,
    and its sidecar's and poster's temporary files."""
    part, sidecar, poster = beside
    folder = os.path.dirname(part)
    return [part, *(os.path.join(folder, _TMP.format(tmp_stem(os.path.basename(path)))) for path in (sidecar, poster))]


def _kept_written(aside: str) -> list[str]:
    """The paths a run writes to keep the file a job's video replaces at `aside`, under `superseded_dir`
    (`keep_take`, `keep_file`): it, the sidecar and the image kept beside it, and their temporary files."""
    folder = os.path.dirname(aside)
    _, sidecar, poster = files_beside(aside)
    return [aside, sidecar, poster,
            *(os.path.join(folder, _TMP.format(tmp_stem(os.path.basename(path)))) for path in (aside, sidecar, poster))]


def _refuse_count(manifest: Manifest, count: int, cap: int, *, at_least: bool = False, flag: bool = False) -> None:
    """`flag`: the cap is --max-jobs's, which wins over run.max_jobs. Said at run.max_jobs when it sets the cap,
    else at what makes the jobs: the matrix, the sweeps, or `repeat` for one job taken many times."""
    explicit = manifest.data.get("run") or {}
    if manifest.matrix or manifest.sweeps:
        made_by, check = ("matrix",) if manifest.matrix else ("sweeps",), "the matrix"
    else:
        made_by, check = ("repeat",), "repeat"
    where = ("run", "max_jobs") if "max_jobs" in explicit and not flag else made_by
    source = f"the cap of {cap:,} (--max-jobs {cap})" if flag else f"the cap of {cap:,}"
    raise manifest.error(
        where,
        f"this manifest plans {'at least ' if at_least else ''}{count:,} jobs, above {source}; check {check}, "
        "or raise the cap with --max-jobs or run.max_jobs",
    )


def _build(
    manifest: Manifest,
    caps: ProviderCaps,
    *,
    max_jobs: int | None,
    outputs_dir: Path | None,
    digest: Callable[[Path], str],
    records: ImageRecords | None,
    unread_images: bool = False,
) -> Plan:
    errors = Collector(home=manifest.display or manifest.path)
    model = caps.model(manifest.model)
    if model is None:
        known = ", ".join(sorted(caps.models)) or "none"
        raise manifest.error(("model",), f"unknown model {manifest.model!r} for provider {caps.provider} (known: {known})",
                             CapabilityError)
    run = dict(manifest.run or {})
    cap = int(max_jobs or run.get("max_jobs") or DEFAULT_MAX_JOBS)
    problem = not_recordable(manifest.path)
    if problem is not None:
        raise ManifestError(f"the manifest's own path: {problem}", file=shown(manifest.display or manifest.path))
    out_dir = (outputs_dir or outputs_dir_of(manifest)).resolve()
    unwritable: list[tuple[str, str | None]] = []
    refuse_own_links(manifest, out_dir)
    if outputs_dir is None:
        out_field = outputs_field(manifest)
        unwritable += [(out_field, _check_folder(manifest, out_field, out_dir)), (out_field, _runs_unwritable(out_dir))]
    state_field = "state_dir" if manifest.data.get("state_dir") else ""
    unwritable.append((state_field, _check_folder(manifest, state_field, state_dir_of(manifest))))
    # `run` and `retry` refuse it (`check_writable`); the manifest is valid
    folder_warnings = [manifest.warning((at,) if at else (),
                                        f"{problem}: `gridrun run` would refuse it; {_elsewhere([at])}")
                       for at, problem in unwritable if problem is not None]
    folder_warnings += _foreign_files(manifest, out_dir)
    sweeps = sweeps_of(manifest, model.aliases)
    for exc in null_beside_value(manifest, model.aliases):
        errors.add(exc)
    if caps.api_key_env:
        # the variable a capabilities file (GRIDRUN_CAPABILITIES) names holds the key the provider will send: its
        # value is looked for in the manifest as the `*_API_KEY` ones are
        from .bugs import key_env_read

        key_env_read(caps.api_key_env)
    for exc in _keys_written(manifest):
        errors.add(exc)

    prepared: list[tuple[Sweep, Prepared]] = []
    for sw in sweeps:
        if sw.matrix:
            def err(p: tuple[Any, ...], msg: str, _sw: Sweep = sw) -> Exception:
                return manifest.error(_sw.prefix + ("matrix",) + tuple(p), msg, MatrixError)
            try:
                prepared.append((sw, prepare(sw.matrix, error=err, cap=cap // max(1, sw.repeat))))
            except ManifestError as exc:
                errors.add(exc)
            except ManifestErrors as exc:
                for e in exc.errors:
                    errors.add(e)
        else:
            single = Expansion((Combination((), "single", ()),), ())
            prepared.append((sw, Prepared(1, lambda: 1, lambda single=single: single, exact=True)))
    # The cap first: counted, not expanded (millions of combinations would take seconds and gigabytes), and
    # by a floor first when that is enough (counting lists what the excludes remove).
    if not errors.errors:
        floor = sum(pr.at_least * sw.repeat for sw, pr in prepared)
        if floor > cap:
            exact = all(pr.exact for _, pr in prepared)
            _refuse_count(manifest, sum(pr.count() * sw.repeat for sw, pr in prepared) if exact else floor, cap,
                          at_least=not exact, flag=bool(max_jobs))
    count = sum(pr.count() * sw.repeat for sw, pr in prepared)
    if count > cap and not errors.errors:
        _refuse_count(manifest, count, cap, flag=bool(max_jobs))
    expansions = [(sw, pr.expand()) for sw, pr in prepared]
    for sw, expansion in expansions:
        if not expansion.combinations:
            numbers = ", ".join(str(n) for n in sorted({i for _, i in expansion.excluded}))
            errors.add(manifest.error(
                sw.prefix + ("matrix", "exclude"),
                f"every combination of the matrix is excluded ({len(expansion.excluded)} removed by exclude "
                f"{numbers}), so there is nothing to run; remove or narrow an exclude entry, or add an include "
                "(GitHub would run one job with an empty matrix; gridrun plans none and stops)", MatrixError))
    errors.raise_if_any()

    errors.one_job = count == 1
    if count > cap:
        _refuse_count(manifest, count, cap, flag=bool(max_jobs))

    path_max, name_max = limits(out_dir)
    ctx_job = JobMaker(manifest, caps, model, errors, digest, str(out_dir), name_max=name_max)
    if unread_images:
        ctx_job.recorded_image = (lambda path: records.digest(path) or IMAGE_UNREAD) if records is not None \
            else (lambda path: IMAGE_UNREAD)
    elif records is not None:
        ctx_job.recorded_image = records.digest
    list_params = {name for name, spec in model.params.items() if spec.type.endswith("_list")}
    for sw, expansion in expansions:
        inside = sw.prefix + ("matrix",)
        from_file = {axis[len(inside):] for axis in manifest.data_lines if axis[:len(inside)] == inside}
        for path, message in matrix_warnings(sw.matrix, expansion.unmatched, from_file):
            ctx_job.warnings[manifest.warning(inside + path, message)] = None
        for path, message in expansion.notes:
            ctx_job.warnings[manifest.warning(inside + path, message)] = None
    excluded: list[tuple[str | None, Combination, int]] = []
    compiled_sweeps = [(sw, expansion, compile_sweep(manifest, sw, errors)) for sw, expansion in expansions]
    ctx_job.read_anywhere = frozenset().union(*(read_by(c[0], c[2], c[3]) for _, _, c in compiled_sweeps
                                                if c is not None))
    if any(c is None for _, _, c in compiled_sweeps):
        # what a sweep that did not compile reads is not known: any top-level var may be its, and rendered for the
        # other sweeps it could fail there for a matrix key only that sweep has (the plan stops at its error anyway)
        ctx_job.read_anywhere |= {n for sw, _, _ in compiled_sweeps for n, path in sw.var_paths.items()
                                  if path[:1] == ("vars",)}
    for sw, expansion, compiled in compiled_sweeps:
        excluded.extend((sw.name, c, i) for c, i in expansion.excluded)
        if compiled is not None:
            ctx_job.sweep(sw, expansion, *compiled)
            cvars, _, cparams, coutput = compiled
            whole = set().union(*(c.written_whole() for c in (*cvars.values(), *cparams.values(), coutput)))
            passed = [n for n in whole if n in cvars and cvars[n].kind == "expr"]  # `line: "{{ tags }}"`: tags
            while passed:
                for n in cvars[passed.pop()].names - whole:
                    whole.add(n)
                    if n in cvars and cvars[n].kind == "expr":
                        passed.append(n)
            for path, message in _lists_kept_whole(sw.matrix, list_params, whole):
                ctx_job.warnings[manifest.warning(sw.prefix + ("matrix",) + path, message)] = None
    ctx_job.finish()
    images_gone: dict[str, str] = {}
    images_unread: dict[str, str] = {}
    if ctx_job.gone and (records is not None or unread_images):
        images_gone = _gone_images(manifest, ctx_job, records, errors, unread=images_unread if unread_images else None)
    errors.raise_if_any()
    jobs = ctx_job.jobs
    found = _check_paths(manifest, jobs, out_dir, path_max)
    same: list[tuple[Job, Job]] = []
    if len({j.hash for j in jobs}) < len(jobs):  # the usual plan has none: counted without a mapping of them
        first_of: dict[str, Job] = {}
        same = [(first_of[j.hash], j) for j in jobs if first_of.setdefault(j.hash, j) is not j]
    if same:
        # One job per request is what the state records and the run follows: a second key for the same request
        # would have no render of its own.
        first, second = same[0]
        jobs_send = f"{len(same):,} {'job sends' if len(same) == 1 else 'jobs send'}"
        where = next(sw.prefix for sw, _ in expansions if sw.name == second.sweep) + ("matrix",) \
            if second.sweep is not None else ("matrix",) if "matrix" in manifest.data else ("params",)
        if first.sweep != second.sweep:
            raise manifest.error(where, (
                f"{jobs_send} exactly the same request as a job of another sweep (e.g. {second.key!r} and "
                f"{first.key!r}{ctx_job.rows_said(second.key, first.key)}): one request is one job; leave it out of "
                "one of the sweeps (an exclude there)"))
        apart = [k for k, v in dict(second.values).items() if dict(first.values).get(k, object()) != v]
        named = next(((k, n) for k in apart if (n := param_named(model, k)) is not None), None)
        why = "" if named is None else (
            f" (the axis named '{named[0]}' is a template value: '{named[1][0]}' is the parameter's matrix name)")
        err = manifest.error(where, (
            f"{jobs_send} exactly the same request as an earlier job (e.g. {second.key!r} and {first.key!r}"
            f"{ctx_job.rows_said(second.key, first.key)}): the "
            f"values that tell them apart change no request parameter{why}; use them in a template of params, or use "
            "repeat for distinct renders of one request"))
        # what the templates were warned of may be why (`{% if r.copy %}`, the row's method, reads no column): said
        # with the error
        err.warnings = tuple(ctx_job.warnings)
        raise err
    for first_key, second_key, *differ in _alike_requests(jobs):
        errors.add(ctx_job.alike_request(first_key, second_key, *differ), second_key)
    errors.raise_if_any()

    # Every combination made a job (else an error was raised above), so the axes can be read from them.
    axes: dict[str, set[Any]] = {}
    key_sets: dict[int, frozenset[str]] = {}
    # The (key, value) pairs are gathered first: jobs share a few of them, and a set takes a job's at once.
    pairs: set[tuple[str, Any]] = set()
    for _, expansion in expansions:
        for combo in expansion.combinations:
            if id(combo.sources) not in key_sets:  # the first combination of its keys: axes in order of appearance
                key_sets[id(combo.sources)] = frozenset(k for k, _ in combo.values)
                for k, _ in combo.values:
                    axes.setdefault(k, set())
            try:
                pairs.update(combo.values)
            except TypeError:
                for k, v in combo.values:
                    try:
                        pairs.add((k, v))
                    except TypeError:
                        pairs.add((k, format_value(v)))
    for k, v in pairs:
        axes[k].add(v)
    # A key that some jobs lack varies too (an include that adds it to a few combinations).
    partial = {k for k in axes if any(k not in keys for keys in key_sets.values())}
    budget = manifest_budget(manifest)
    return Plan(
        manifest=manifest,
        provider=caps.provider,
        model=model.model,
        jobs=tuple(jobs),
        excluded=tuple(excluded),
        axes=tuple(axes),
        varying=tuple(k for k, vs in axes.items() if len(vs) > 1 or k in partial),
        warnings=(*folder_warnings, *_cut_by_comments(manifest), *manifest.data_warnings,
                  *_formula_errors_sent(manifest, jobs), *ctx_job.warnings),
        total_micros=sum(j.cost_micros for j in jobs),
        outputs_dir=out_dir,
        state_dir=state_dir_of(manifest),
        budget_micros=budget_micros(budget),
        max_jobs=cap,
        occupied=tuple(found.occupied),
        sidecared=tuple(found.sidecared),
        posters=tuple(found.posters),
        temps=tuple(found.temps),
        read_otherwise=tuple(_read_otherwise(manifest)),
        image_digests=dict(ctx_job.digests),
        images_gone=images_gone,
        images_unread=images_unread,
    )


class ImageRecords(Protocol):
    """What the state recorded of the local input images its done jobs sent (`resume.RecordedImages`)."""

    def digest(self, path: str) -> str | None:
        """The SHA-256 the latest done job that sent the image at `path` recorded of it; None: none did."""

    def done(self, hashes: Sequence[str]) -> set[str]:
        """Those of `hashes` whose job the state holds done."""


IMAGE_UNREAD = "unread"
"""What stands for the digest of a local input image not found in a plan made with `unread_images` (`build`):
no SHA-256, so the hash of a job sending it is no render's."""


def _gone_images(manifest: Manifest, maker: JobMaker, recorded: ImageRecords | None, errors: Collector, *,
                 unread: dict[str, str] | None = None) -> dict[str, str]:
    """The jobs that send an input image no longer there, planned by the digest a done job recorded of it
    (`JobMaker.recorded_image`): each done in the state (its video kept, nothing to send) is said in a warning; any
    other needs the file to be sent, and is the error "not found" that it was, but where `unread` is given (a plan
    made with `unread_images`): there, a job planned with `IMAGE_UNREAD` for an image is put in `unread` (its hash ->
    the path looked for), and no error is made. Returns the done ones' hashes, each with the path looked for
    (`Plan.images_gone`)."""
    out: dict[str, str] = {}
    using = [(job, [p for p in param_strings(job.params) if p in maker.gone]) for job in maker.jobs]
    using = [(job, paths) for job, paths in using if paths]
    done = recorded.done([job.hash for job, _ in using]) if recorded is not None else set()
    said: dict[tuple[Any, ...], list[tuple[str, str, Path, str]]] = {}
    for job, paths in using:
        for p in paths:
            where, note, item, looked = maker.gone[p]
            if job.hash in done:
                said.setdefault(where, []).append((job.key, item, looked, note))
                out.setdefault(job.hash, str(looked))
            elif unread is not None:
                if maker.digests.get(p) == IMAGE_UNREAD:
                    unread.setdefault(job.hash, str(looked))
            else:
                errors.add(manifest.error(where, f"input image {item!r} not found (looked for {looked}){note}",
                                          CapabilityError), job.key)
    for where, found in said.items():
        key, item, looked, note = found[0]
        if len(found) == 1:
            text = (f"input image {item!r} not found (looked for {looked}){note}; its job {key} is done, its "
                    "video kept: it is planned from the digest recorded when it was sent, and a run sends it no "
                    "more (put the file back to render it again)")
        else:
            more = f" (and {len(found) - 3:,} more)" if len(found) > 3 else ""
            text = (f"{len(found):,} jobs send input images not found, e.g. {item!r} (looked for {looked}){note}; "
                    f"they are done, their videos kept: {'; '.join(k for k, *_ in found[:3])}{more}: planned from "
                    "the digests recorded when they were sent, a run sends them no more (put the files back to render "
                    "them again)")
        maker.warnings[manifest.warning(where, text)] = None
    return out


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for k in sorted(value, key=lambda k: unicodedata.normalize("NFC", k)):  # a key's two forms side by side
            yield k
            yield from _strings(value[k])


def _joins(text: str, at: int) -> bool:
    """The character at `at` is part of the letter before it: a combining mark, or what composes with it into one
    character (a Hangul vowel or final jamo after the jamo it follows)."""
    return 0 < at < len(text) and (unicodedata.combining(text[at]) != 0
                                   or len(unicodedata.normalize("NFC", text[at - 1:at + 1])) == 1)


def _cluster(text: str, at: int) -> str:
    """The character at `at` and what follows it that makes one letter with it: combining marks, and characters
    that compose with it into one (`한` written decomposed is three jamo, U+1112 U+1161 U+11AB)."""
    end = at + 1
    while end < len(text) and (unicodedata.combining(text[end])
                               or len(unicodedata.normalize("NFC", text[at:end + 1])) == 1):
        end += 1
    return text[at:end]


def _code_points(cluster: str) -> str:
    """`é` -> "é U+00E9", `e` + U+0301 -> "e + U+0301", the jamo of `한` -> "ᄒ U+1112 + U+1161 + U+11AB": how a
    warning names a letter written in one form (what follows its first character by code point alone)."""
    return " + ".join(c if c.isascii() else f"U+{ord(c):04X}" if i else f"{c} U+{ord(c):04X}"
                      for i, c in enumerate(cluster))


def form_said(then: Any, now: Any) -> str:
    """The first letter written in another Unicode form in `now` than in `then` (equal composed, NFC, or under
    `textforms.alike`, invisible format characters left out): "é U+00E9 then, e + U+0301 now"; "" when no string
    differs but by an invisible character."""
    for a, b in zip(_strings(then), _strings(now)):
        a, b = drawn(a), drawn(b)
        if a == b:
            continue
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        while at > 0 and (_joins(a, min(at, len(a) - 1)) or _joins(b, min(at, len(b) - 1))):
            at -= 1
        return f"{_code_points(_cluster(a, at))} then, {_code_points(_cluster(b, at))} now"
    return ""


def form_only_warning(manifest: Manifest, run_id: int,
                      found: Sequence[tuple[tuple[Any, Any], str | None, Sequence[tuple[tuple[Any, ...], str]],
                                            Sequence[str]]], *,
                      force: bool = False) -> Warned:
    """The warning of jobs to send whose request equals one of run `run_id` but for the Unicode form of a letter
    or an invisible format character (`found`: of each, (then, now), their parameters, and as `spacing_warning`'s,
    the key of run `run_id`'s job when the plan no longer has it, the data files its values that differ came from
    and their lines there): a manifest or a data file saved again composed or not (NFC, NFD), by an editor or a
    copy from another system, or a byte order mark or a zero width space taken out of it, whose jobs a run would
    pay for again. Said at the field naming the first data file, with the first rows, else at the manifest's top.
    With `force` (every job sent again whatever its form), saving the file back saves nothing: not advised."""
    n = len(found)
    jobs = "1 job differs" if n == 1 else f"{n:,} jobs differ"
    first = found[0][0]
    form, invisible = unlike_parts(*first)
    rows = [row for _, _, _, its in found for row in its]
    at = ", ".join(dict.fromkeys(rows[:3])) + (f" and {len(rows) - 3:,} more" if len(rows) > 3 else "")
    said = []
    if form:
        said.append(f"in Unicode form (a letter composed or not: {form_said(*first)}{', from ' + at if rows else ''})")
    if invisible:
        listed = ", ".join(f"U+{ord(ch):04X}" for ch in invisible[:3]) + (", ..." if len(invisible) > 3 else "")
        said.append(f"by {'an invisible' if len(invisible) == 1 else 'the invisible'} {listed}"
                    f"{', from ' + at if rows and not form else ''}")
    it, them = ("it", "it") if n == 1 else ("they", "them")
    renamed = [was for _, was, _, _ in found if was is not None]
    new = _renamed_keys(renamed, n, run_id)
    field, where = _saved_in(found, renamed)
    # a file saved in another form can be saved back; a character taken out (a byte order mark inside a data file,
    # now refused there) is not always one to put back: said, not advised
    back = (f"; to have {them} as run {run_id} made {them}, save {where} as it was, in that form"
            if form and not force else "")
    return manifest.warning(field, f"{jobs} from run {run_id} only {' and '.join(said)}{new}: {it} would be rendered "
                                   f"and paid for again, for what reads the same{back}")


def _saved_in(found: Sequence[tuple[Any, Any, Sequence[tuple[tuple[Any, ...], str]], Any]],
              renamed: Sequence[str]) -> tuple[tuple[Any, ...], str]:
    """Where the warning of `found` (as `spacing_warning`'s) is, the field naming the first data file its values
    came from (else the manifest's top), and the files to save back as they were, in words (`renamed`: the keys of
    run's jobs the plan no longer has, whose values a data file alone holds)."""
    files: list[str] = []
    field: tuple[Any, ...] = ()
    for _, _, its, _ in found:
        for at, name in its:
            field = field or at
            if name not in files:
                files.append(name)
    where = (" and ".join(files[:3]) + (" (or the manifest)" if not renamed else "") if files
             else "the manifest (or the data file the text comes from)")
    return field, where


def _renamed_keys(renamed: Sequence[str], n: int, run_id: int) -> str:
    """What a warning of `n` jobs says of those planned as new (`renamed`: the keys of run `run_id`'s jobs they
    were, no longer in the manifest); "" for none."""
    if not renamed:
        return ""
    shown = renamed[0] if len(renamed[0]) <= 60 else renamed[0][:57] + "..."
    return (f"; {'it is' if n == 1 else f'{len(renamed):,} of them ' + ('is' if len(renamed) == 1 else 'are')} "
            "planned as new, "
            f"{'its key' if len(renamed) == 1 else 'their keys'} of run {run_id} ({shown}"
            f"{f' and {len(renamed) - 1:,} more' if len(renamed) > 1 else ''}) no longer in the manifest")


def spacing_warning(manifest: Manifest, run_id: int,
                    found: Sequence[tuple[tuple[Any, Any], str | None, Sequence[tuple[tuple[Any, ...], str]],
                                          Sequence[str]]], *,
                    force: bool = False) -> Warned:
    """The warning of jobs to send whose request equals one of run `run_id` line by line but for white space
    (`found`: of each, its parameters (then, now), the key of run `run_id`'s job when the plan no longer has it,
    the data files its values that differ came from, each with the field naming it, where the warning is, and
    those values' lines there, `shots.csv:3`); each kind of change said with the rows that have it (the first
    three kinds, the first three rows of each):
    spaces at line ends trimmed or added, a final line break added or taken out, CRLF line ends for LF, as a commit
    hook (pre-commit's trailing-whitespace and end-of-file-fixer), an editor, a spreadsheet or a checkout with
    `core.autocrlf` leaves. Their jobs would be paid for again for what reads the same. A value of a data file that
    differs so is another key, the job shown as new and the earlier one as no longer in the manifest: said, with
    the earlier key. With `force` (every job sent again), saving the file back saves nothing: not advised."""
    n = len(found)
    jobs = "1 job differs" if n == 1 else f"{n:,} jobs differ"
    kinds: dict[str, list[str]] = {}  # what changed in a job's parameters -> the rows of the jobs it changed so
    for (then, now), _, _, rows in found:
        names = ([k for k in sorted(then.keys() | now.keys(), key=str) if then.get(k) != now.get(k)]
                 if isinstance(then, dict) and isinstance(now, dict) else [])
        said = []
        for name in names[:2]:
            how = unspaced_value(then.get(name), now.get(name))
            if how:
                said.append(f"params.{name}: {_of_the_value(', '.join(how))}")
        kinds.setdefault(f"{'; '.join(said)}{'; ...' if len(names) > 2 else ''}" if said else "", []).extend(rows)
    parts = []
    for how, rows in list(kinds.items())[:3]:
        at = ", ".join(dict.fromkeys(rows[:3])) + (f" and {len(rows) - 3:,} more" if len(rows) > 3 else "")
        parts.append(", ".join(filter(None, (how, f"from {at}" if rows else ""))))
    if len(kinds) > 3:
        parts.append(f"and {len(kinds) - 3:,} other {'kind' if len(kinds) == 4 else 'kinds'} of change")
    what = f" ({'; '.join(filter(None, parts))})" if any(parts) else ""
    renamed = [was for _, was, _, _ in found if was is not None]
    new = _renamed_keys(renamed, n, run_id)
    field, where = _saved_in(found, renamed)
    it, them = ("it", "it") if n == 1 else ("they", "them")
    back = (f"; to have {them} as run {run_id} made {them}, save {where} as it was (an editor or a commit hook "
            "that trims spaces at line ends or adds a final line break, or a checkout or a spreadsheet writing CRLF "
            "line ends, changes a file so)") if not force else ""
    return manifest.warning(field, f"{jobs} from run {run_id} only in white space{what}{new}: {it} would be rendered "
                                f"and paid for again, for what reads the same{back}")


def _of_the_value(how: str) -> str:
    """`unspaced`'s words with its lines said as the value's ("trailing spaces added (line 1 of the value)"), not
    to be read as a line of the file the warning is at."""
    return re.sub(r"\((lines? \d[\d, .]*)\)", r"(\1 of the value)", how)


def numbers_warning(manifest: Manifest, run_id: int, found: Sequence[tuple[Any, Any]], *,
                    force: bool = False) -> Warned:
    """The warning of jobs to send whose request equals one of run `run_id` but for how a number is written
    (`found`: the parameters (then, now) of each): 5 then, 5.0 now. A `number` parameter keeps a whole number the
    manifest writes (5) as it is, and reads 5.0, "5" and a data file's text (every CSV cell) as a float, so the same
    number moved from the manifest into a data file is another request, paid for again. With `force` (every job sent
    again), writing it back saves nothing: not advised."""
    import json

    n = len(found)
    jobs = "1 job differs" if n == 1 else f"{n:,} jobs differ"
    then, now = found[0]
    names = ([k for k in sorted(then.keys() | now.keys(), key=str) if json.dumps(then.get(k)) != json.dumps(now.get(k))]
             if isinstance(then, dict) and isinstance(now, dict) else [])
    said = "; ".join(f"params.{name}: {json.dumps(then.get(name))} then, {json.dumps(now.get(name))} now"
                     for name in names[:2]) + ("; ..." if len(names) > 2 else "")
    it, them = ("it", "it") if n == 1 else ("they", "them")
    back = (f"; to have {them} as run {run_id} made {them}, write the number as run {run_id} had it (a whole number "
            "written in the manifest is sent as it is, a data file's, or one written with a decimal point, as a "
            "decimal)") if not force else ""
    return manifest.warning((), f"{jobs} from run {run_id} only in how a number is written"
                                f"{f' ({said})' if said else ''}: {it} would be rendered and paid for again, for the "
                                f"same value{back}")


def renamed_images_warning(manifest: Manifest, run_id: int, found: Sequence[Sequence[tuple[str, str, str]]], *,
                           force: bool = False) -> Warned:
    """The warning of jobs to send whose request equals one of run `run_id` but for the name of an input image
    whose content is the same (`found`: of each, (path then, path now, SHA-256) of each image renamed): a tidy-up
    rename of the file and its line in the manifest (a case-only rename too). A local image is in its job's hash
    by its name and digest, while the provider gets its bytes alone: the same request, paid for again. With
    `force` (every job sent again), renaming it back saves nothing: not advised."""
    def shown_beside(path: str, manifest: Path) -> str:  # as the manifest's folder sees it, else whole
        try:
            return Path(path).relative_to(manifest.parent).as_posix()
        except ValueError:
            return path

    n = len(found)
    jobs = "1 job differs" if n == 1 else f"{n:,} jobs differ"
    pairs: list[tuple[str, str, str]] = []
    for its in found:
        for pair in its:
            if pair not in pairs:
                pairs.append(pair)
    said = "; ".join(f"{shown_beside(now, manifest.path)} ({shown_beside(then, manifest.path)} then), the same "
                     f"content (sha256 {digest[:12]})" for then, now, digest in pairs[:3])
    more = f"; and {len(pairs) - 3:,} more" if len(pairs) > 3 else ""
    it, them = ("it", "it") if n == 1 else ("they", "them")
    one = len(pairs) == 1
    back = (f"; rename {'it' if one else 'them'} back (and {'its line' if one else 'their lines'} in the manifest) "
            f"to have {them} as run {run_id} made {them}") if not force else ""
    return manifest.warning((), f"{jobs} from run {run_id} only in the name of "
                                f"{'input image' if one else 'input images'} {said}{more}: the provider gets the same "
                                f"request, yet {it} would be rendered and paid for again{back}")


def environment_defaults_warning(manifest: Manifest, run_id: int,
                                 found: Sequence[Sequence[tuple[str, Any, Any, str | None]]]) -> Warned:
    """The warning of jobs to send whose request differs from one of run `run_id` only in parameters whose value
    is a default that a capabilities file named in GRIDRUN_CAPABILITIES sets (`found`: of each, (parameter, then,
    now, the file as named) of each that differs): a variable exported for another project, or set on one machine
    and not another, changes every job's request, hash and price, with nothing changed in the manifest. A file
    None: a parameter run `run_id` sent that neither its manifest nor the manifest now sets, not set now (the
    variable unset since, or naming other files), which the state cannot tell the source of."""
    import json

    if any(file is None for its in found for *_, file in its):
        return _defaults_gone_warning(manifest, run_id, found)

    n = len(found)
    jobs, seen = _differing(found)
    said = "; ".join(f"params.{name} ({'not set' if then is None else json.dumps(then)} then, "
                     f"{'not set' if now is None else json.dumps(now)} now), a default of {file}"
                     for name, then, now, file in seen[:3]) + ("; ..." if len(seen) > 3 else "")
    it = "it" if n == 1 else "they"
    return manifest.warning((), f"{jobs} from run {run_id} only by {said}, named in GRIDRUN_CAPABILITIES (not in "
                                f"the manifest): {it} would be rendered and paid for again; unset GRIDRUN_CAPABILITIES "
                                f"(or leave that file out of it) to plan as run {run_id} did")


def _differing(found: Sequence[Sequence[tuple[str, Any, Any, str | None]]]
               ) -> tuple[str, list[tuple[str, Any, Any, str | None]]]:
    """Of the parameters by which each job of `found` differs from the last run's (name, then, now, the file of its
    default): "N jobs differ", and each parameter once, in the order first met."""
    n = len(found)
    seen: list[tuple[str, Any, Any, str | None]] = []
    for its in found:
        for item in its:
            if all(item[0] != s[0] for s in seen):
                seen.append(item)
    return ("1 job differs" if n == 1 else f"{n:,} jobs differ"), seen


def _defaults_gone_warning(manifest: Manifest, run_id: int,
                           found: Sequence[Sequence[tuple[str, Any, Any, str | None]]]) -> Warned:
    """`environment_defaults_warning` where some parameters run `run_id` sent are not set now, by no file the
    state can name: how GRIDRUN_CAPABILITIES is now, and to set it back as it was for that run."""
    import json
    import os

    n = len(found)
    jobs, seen = _differing(found)
    said = "; ".join(f"params.{name} ({'not set' if then is None else json.dumps(then)} then, "
                     f"{'not set' if now is None else json.dumps(now)} now), "
                     + (f"a parameter the manifest does not set, which run {run_id} sent (a capabilities file's "
                        "default?)" if file is None else f"a default of {file}, named in GRIDRUN_CAPABILITIES")
                     for name, then, now, file in seen[:3]) + ("; ..." if len(seen) > 3 else "")
    it = "it" if n == 1 else "they"
    env = os.environ.get("GRIDRUN_CAPABILITIES", "")
    now = f"it names {env} now" if env else "it is not set now"
    return manifest.warning((), f"{jobs} from run {run_id} only by {said}: {it} would be rendered and paid for again; "
                                f"if GRIDRUN_CAPABILITIES named a capabilities file for run {run_id} ({now}), set "
                                f"GRIDRUN_CAPABILITIES back as it was then to plan as run {run_id} did")


# --------------------------------------------------------------------------------------------------
# The plan against the state store.
# --------------------------------------------------------------------------------------------------
# The plan against the state store.


@dataclass(frozen=True, slots=True)
class Stored:
    """What the state store knows of a job hash."""

    state: str
    done_run_id: int | None
    output_path: str | None
    output_ok: bool               # the file is there with the recorded SHA-256
    output_altered: bool = False  # a file is there, but not with the recorded SHA-256 (edited or replaced in place)
    simulator_at: str | None = None  # the endpoint a simulator made its video at (`Store.simulator_takes`), None:
                                     # a provider's, or made before gridrun kept where
    done_run_of: str | None = None  # the manifest of run `done_run_id` when it is another's (sharing the state)
    # the video at the plan's path is an earlier take of its own (`resume.own_take`), which a run caches as it is,
    # not the later one another manifest sharing the state re-rendered (`done_run_id`: the run of its own take)
    own_take: bool = False
    gone: bool = False  # expired, its video no longer at the provider (`state.gone_at_provider`): only a retry
    # expired, and the provider gave no fresh URL for it when last asked (`state.no_fresh_url`): a retry, paid, is
    # the way to its video (a run still asks once more, at no cost, not counted on)
    no_url: bool = False
    # unknown with a video id (one the provider lost, `Executor._lost`): a run asks for that video again, by its
    # id, not for the create's key in the provider's request log
    lost: bool = False
    # unknown, and the last lookup found that the provider kept no request log (`state.no_request_log`): a run asks
    # again
    no_log: bool = False
    # in flight or of unknown outcome: the endpoint its latest create was sent to (`Store.sent_to`), None: not recorded
    sent_to: str | None = None
    # of those, its latest create answered by a simulator (`Store.sent_to`, `simulator`): nothing paid there
    sent_to_simulator: bool = False
    # in flight or of unknown outcome: the fingerprint of the API key its latest create was sent with
    # (`Store.sent_with`), None: not recorded
    sent_with: str | None = None
    # done, its file missing or altered: where the very take is whole that a run puts back at no cost
    # (`resume.kept_copy`: an earlier run's copy, a take kept under .runs/superseded/), None: fetched again
    restore_from: str | None = None
    # in flight, found of unknown outcome by a run that left it so (`Store.book_to_sender`): what it costs is the
    # sending run's, which a later run's budget does not count
    senders: bool = False
    # settled, and an earlier attempt of it was billed (`Store.billed_before`): sending it again pays again
    billed: bool = False
    # failed, its last attempt's cost not reported (a render the provider failed with no figure, counted $0):
    # whether it was billed is not known
    unreported: bool = False
    error: str | None = None  # its last error, as recorded (a retry given `--code` picks jobs by its code)


@dataclass(frozen=True, slots=True)
class Diff:
    """Why each job of a plan will or won't be paid for."""

    reasons: Mapping[str, str]            # job key -> reason ("new", "cached: done in run 3", ...)
    new: int
    cached: int
    in_flight: int                        # sent by an earlier run, not yet saved: the run follows them
    settled: int                          # failed/rejected/unknown/expired/cancelled: re-run only on request
    changed: tuple[str, ...]              # keys whose content (hash) changed since the previous run
    stale: tuple[str, ...]                # keys of the previous run whose jobs (hashes) this plan no longer has
    refetch: int = 0                      # done (their file missing or altered) or expired: fetched again, free
    following: tuple[str, ...] = ()       # keys of those in flight the run counts against its budget (the
                                          # ones not yet rendered: a job downloading was billed already)
    left_behind: resume.LeftBehind | None = None  # jobs the last run left in flight that the plan no longer has: a run
                                           # refuses to start over them (without --leave-in-flight)
    warnings: tuple[str, ...] = ()         # what the state tells of the manifest (another file of its name)
    verified: frozenset[str] = frozenset()  # paths of the plan's videos that hold their done job's recorded take
    # keys of the jobs whose video a run does not write: cached where they are (not those restored from gridrun's
    # copy), done and not rendered again, and the settled ones it leaves alone
    kept: frozenset[str] = frozenset()
    unknown: int = 0                        # of those settled, the jobs of unknown outcome (retry --unknown)
    altered: tuple[str, ...] = ()           # paths of the plan's videos where a done job's recorded take was, now
                                            # holding another file
    renamed: tuple[tuple[str, str], ...] = ()  # (key, key now) of the previous run's jobs (hashes) this plan has
                                               # under another key (matrix keys reordered): the same jobs
    aside: Aside = NOTHING_ASIDE               # files in the way a run keeps aside, as the state tells them
                                               # (`outputs.kept_aside`, made by `api.diff`)
    # key -> the endpoint a simulator made the done video at, of the plan's jobs whose video one made
    simulator_at: Mapping[str, str] = field(default_factory=dict)
    forced: int = 0                            # of `new`, the jobs --force sends again that a run sent before
                                               # (done, failed, ...): each is paid again
    # of `changed`, key -> what differs from the previous run's job of that key ("provider: sim then, lumenfall now")
    changes: Mapping[str, str] = field(default_factory=dict)
    previous_run: int | None = None            # the id of the previous run (`changed` is against it)
    # of `changed`, key -> the fields that differ ("provider", "params.prompt", "input images"; "the take": none)
    changed_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # of `changed`, key -> the previous run's value of each parameter that differs (None: not set then); and of the
    # new jobs whose request reads as one of the previous run's under another key (line ends), the same
    earlier: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # of the settled jobs a run leaves, key -> the command that sends them again (`resume.action`'s rule): "retry"
    # (failed, rejected, expired, cancelled), "retry --unknown" (of unknown outcome, which may pay twice)
    retried_by: Mapping[str, str] = field(default_factory=dict)
    retried: int = 0                           # of `new`, the settled jobs `retry` (--unknown) sends again
    # with `retry`, (key, last error) of every settled job it would send again given no `--key`/`--code`: what a
    # selection can pick from (`options.selection_misses`)
    retry_candidates: tuple[tuple[str, str | None], ...] = ()
    retried_billed: int = 0                    # of `retried`, those an earlier attempt of was billed: paid again
    # of `retried`, those no attempt of was billed whose last attempt's cost was not reported (`Stored.unreported`)
    retried_unreported: int = 0
    retried_unknown: int = 0                   # of `retried`, those of unknown outcome: they may pay twice
    # of `retried`, key -> (state, code, what to change) of those whose last attempt met a refusal the same request
    # meets again (`options.refused_again`: content moderation, an invalid request): sent unchanged, refused again
    refused_again: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    # (where the video is, where this plan puts it) of the cached jobs whose done video a run copies to another path
    # (a sweep or an axis value renamed, another output template, a request another manifest's run made): the file
    # where it is stays as it is
    copied: tuple[tuple[str, str], ...] = ()
    # the jobs the manifest's last run paid that the provider billed above their estimates (`Store.billed_above`)
    billed_above: BilledAbove | None = None
    # what a run's budget counts the jobs' estimates at before it starts: the highest ratio of bills to estimates of
    # the latest run's jobs, where clearly above 1x (`resume.budget_billing`); None: at the estimates
    billing: Billing | None = None
    # of the settled jobs of unknown outcome, the keys of those a run looks up by their create's key in the
    # provider's request log, at no cost (`resume.action`: "lookup"): found, collected; the rest stay `unknown`
    looked_up: tuple[str, ...] = ()
    # of the settled jobs of unknown outcome, the keys of those the last lookup found no request log to look them
    # up in (`Stored.no_log`): gridrun could not check whether they were made; a run looks them up again (they are
    # in `looked_up` too), `retry --unknown` sends them again
    unchecked: tuple[str, ...] = ()
    # of the jobs in flight or of unknown outcome, key -> the endpoint they were sent to, when it is not the plan's
    # (`sent_elsewhere`): a run refuses to start over them (without --leave-in-flight)
    sent_elsewhere: Mapping[str, str] = field(default_factory=dict)
    sent_away: resume.SentAway | None = None  # the same jobs, as a run refuses to start over them (`resume.sent_away`)
    # the jobs in flight or of unknown outcome sent with another API key at the endpoint now, as a run refuses to
    # start over them (`resume.key_away`)
    key_away: resume.KeyAway | None = None
    # of `new`, key -> the endpoint of the jobs in flight or of unknown outcome that were sent to a simulator at
    # another endpoint than the plan's (`simulator_left`): nothing paid there, a run sends them anew here
    anew: Mapping[str, str] = field(default_factory=dict)
    # of the expired jobs fetched again (`refetch`), the keys of those `retry` asks a fresh URL for first, at no cost,
    # and sends again, paid again, only if the provider no longer has the video or gives no fresh URL for it
    fetch_first: tuple[str, ...] = ()
    # of the jobs in flight, the keys of those an earlier run left `submitting` (its create sent, or about to be,
    # the answer never recorded) that a run looks up and may send again (`RESENT_HOW`); in `following` too
    unanswered: tuple[str, ...] = ()

    def sends(self, key: str) -> bool:
        """Whether a run sends (and pays for) the job of `key`."""
        return self.reasons.get(key) in _SENT or key in self.anew

    def to_send(self, jobs: Sequence[Job]) -> list[Job]:
        """The jobs among `jobs` that a run sends, and pays for."""
        return [j for j in jobs if self.sends(j.key)]

    def budgeted(self, jobs: Sequence[Job]) -> list[Job]:
        """The jobs among `jobs` that a run counts against its budget before it starts: those it sends, and
        those an earlier run left in flight that it follows (as `resume.check_budget` counts them)."""
        following = set(self.following)
        return [j for j in jobs if self.sends(j.key) or j.key in following]


# What a run does with a job an earlier run left `submitting` (`Executor._reconcile`): its create's key looked up in
# the provider's request log first, free; found, the job is followed; shown never to have arrived, the job is sent
# again (its one paid render: the first send made none); the log not read (none kept, or no answer), it is sent
# again with the same key where the provider honours keys and still remembers that one (the first send's video
# given back, at no new cost, if it arrived), else left `unknown` (`gridrun retry --unknown` sends it).
RESENT_HOW = ("looked up by its key in the provider's request log first, at no cost, and followed if found; sent "
              "again only if the log shows it never arrived, or cannot tell and the provider honours keys and still "
              "remembers its key (then sent with that key: the video made already, if any, at no new cost), else "
              "left unknown")

# The reasons `diff` gives a job that a run sends.
NEW, CHANGED, FORCED = "new", "changed since the last run", "forced"
ELSEWHERE = "made by a simulator at another endpoint: render again"
RETRIED = "settled, sent again by retry (paid again)"  # an earlier attempt was billed
RETRIED_UNPAID = "settled, sent again by retry (paid; nothing was billed for it before)"
RETRIED_UNREPORTED = "settled, sent again by retry (paid; the cost of its last attempt was not reported)"
RETRIED_UNKNOWN = "unknown, sent again by retry --unknown (may pay twice)"
_SENT = frozenset({NEW, CHANGED, FORCED, ELSEWHERE, RETRIED, RETRIED_UNPAID, RETRIED_UNREPORTED, RETRIED_UNKNOWN})
# The commands that send a settled job again, by the options they run with (`RunOptions`).
RETRY_COMMANDS = {"retry": {"retry_failed": True}, "retry --unknown": {"retry_unknown": True}}
# The stored states of jobs an earlier run sent that a run follows (attaches to, or finds out about: `submitting`).
IN_FLIGHT = ("submitting", "submitted", "running", "downloading")
# The stored states whose jobs a --force run sends again (`resume.action` resets them), as it sends those never
# sent; it follows the jobs in flight and looks up those of unknown outcome as any run does, paying nothing new.
_FORCED = frozenset({"planned", "done", "failed", "rejected", "expired", "cancelled"})
# The stored states of jobs a run leaves as they ended, which only a retry sends again (`RETRY_COMMANDS`).
_SETTLED = frozenset({"failed", "rejected", "expired", "cancelled", "unknown"})


def made_elsewhere(simulator_at: str | None, endpoint: str) -> bool:
    """A done video a simulator made at `simulator_at` (None: a provider's, or of no record) is no video for a run
    against `endpoint` (the plan's, `Plan.endpoint`; empty: not known), which renders it again: the simulator's
    placeholders are cached only for runs against that same simulator. A provider's video is cached under any
    endpoint (a proxy or the provider's own host: the same account's video)."""
    return simulator_at is not None and bool(endpoint) and not same_endpoint(simulator_at, endpoint)


def sent_elsewhere(sent_to: str | None, endpoint: str) -> bool:
    """A job in flight (or of unknown outcome) whose create was sent to `sent_to` (None: not recorded) is not one a
    run against `endpoint` (the plan's; empty: not known) can follow: the server there has no such video, nor the
    create's key in its request log."""
    return sent_to is not None and bool(endpoint) and not same_endpoint(sent_to, endpoint)


def key_fingerprint(key: str) -> str:
    """A short fingerprint of API key `key`, which the state keeps of each run (`Store.start_run`): the first 8 hex
    digits of a SHA-256 of a fixed prefix and the key. It tells two keys apart (another key is most often another
    account) without being the key, nor telling anything of it."""
    return hashlib.sha256(f"gridrun API key fingerprint\0{key}".encode()).hexdigest()[:8]


def sent_with_another_key(sent_with: str | None, key_print: tuple[str, str] | None) -> bool:
    """A job in flight (or of unknown outcome) whose create was sent with the key of fingerprint `sent_with` (None:
    not recorded) is not one a run with the key of `key_print` (`Plan.key_print`; None: no key) can follow: another
    key's account does not know its video, nor its create's key."""
    return sent_with is not None and key_print is not None and sent_with != key_print[0]


def key_back(key_print: tuple[str, str] | None, sent_with: str) -> str:
    """How to run with the key a job was sent with (fingerprint `sent_with`) again, in words."""
    var = key_print[1] if key_print is not None else "the API key's variable"
    return f"set {var} back to the key of fingerprint {sent_with}"


def endpoint_named(at: str) -> str:
    """Endpoint `at` (a base URL, or "in process", as `api.endpoint` gives and the state records where a create was
    sent) named for people: the simulator built in is no place a URL names."""
    return "the simulator built in (in process)" if at == "in process" else at


def endpoint_now(url: str, source: str) -> str:
    """The endpoint a run sends to now (`Plan.endpoint`: `url` and where it comes from, `source`) named for people:
    the base URL and its source, or the simulator built in (no base URL, no network)."""
    if url == "in process":
        return "the simulator built in (in process, no network)"
    return f"{url} (from {source})"


def sent_anew(at: str) -> str:
    """Why a job in flight (or of unknown outcome) at a simulator at endpoint `at`, another than the run's, is
    sent anew (`simulator_left`): said by plan, and recorded as its attempt there is left behind."""
    return f"sent to a simulator at {endpoint_named(at)}, nothing paid: sent here anew"


def simulator_left(s: Stored | None, endpoint: str) -> bool:
    """A job in flight or of unknown outcome (stored as `s`) whose latest create a simulator at another endpoint
    than `endpoint` answered: nothing was paid there, and a run against `endpoint` sends it anew (`resume.decide`).
    One a provider answered, or of no record whether a simulator did, is not: sending it again may pay twice."""
    return (s is not None and s.sent_to_simulator and (s.state in IN_FLIGHT or s.state == "unknown")
            and sent_elsewhere(s.sent_to, endpoint))


def point_back(m: Manifest, at: str, sent_by: tuple[str, int] | None = None) -> str:
    """How to run manifest `m` against endpoint `at` again (where its jobs were sent), in words: the environment's
    variable, which wins over the manifest's `base_url:`, or that field for the simulator. `sent_by`: the provider
    that sent them and its run (`Store.sent_by`); when that is not `m`'s provider now, the jobs are that provider's,
    collected (or cancelled) only by a run of it, with its key: `provider:` put back first, and its variables."""
    from .providers import base_url_env

    if sent_by is not None and sent_by[0] != m.provider:
        return _provider_back(m, at, *sent_by)
    var = base_url_env(m.provider)
    if not _endpoint_id(at):  # the simulator built in: no base URL at all
        field_ = f"remove `base_url:` from {m.path}" if m.base_url else ""
        unset = f"unset {var}" if var and os.environ.get(var, "").strip() else ""
        return " and ".join(x for x in (unset, field_) if x) or "run it with the simulator built in (no base URL)"
    if var:
        return f"set {var}={at}"
    return f"set `base_url: {at}` in {m.path}"


def _provider_back(m: Manifest, at: str, provider: str, run_id: int) -> str:
    """`point_back` for jobs provider `provider` sent (in run `run_id`) to `at`, while manifest `m` names another
    provider now: a base URL set under `m`'s provider would send that provider's key there and collect nothing,
    the jobs being `provider`'s, followed only by a run of it."""
    from .providers import base_url_env, capabilities

    back = (f"put back `provider: {provider}` in {m.path}, as run {run_id} had it (the jobs are {provider}'s; the "
            f"manifest says `provider: {m.provider}` now)")
    try:
        caps = capabilities.load(provider)
    except (capabilities.CapabilityDataError, OSError, ValueError):
        caps = None
    key = caps.api_key_env if caps is not None else None
    with_key = f" with its key in {key}" if key else ""
    var = base_url_env(provider)
    if not _endpoint_id(at):  # the simulator built in
        unset = f"unset {var}" if var and os.environ.get(var, "").strip() else ""
        return f"{back}{', and ' + unset if unset else ''}"
    if var:
        return f"{back}, and set {var}={at}{with_key}"
    return f"{back}, with `base_url: {at}`{with_key}"


def same_endpoint(a: str, b: str) -> bool:
    """Base URLs `a` and `b` reach the same server's video API: the same text, or the same scheme, port and API
    root (the path below the provider's `/v1` or `/openai/v1`, `capabilities.API_ROOTS`, which the simulator serves
    too), and the same host, a loopback one (`localhost`, `127.0.0.1`, `[::1]`) standing for any other. Only for
    telling a simulator's placeholders from videos made elsewhere: a host that is not loopback is never taken for
    another."""
    if a == b:
        return True
    one, two = _endpoint_id(a), _endpoint_id(b)
    return one is not None and one == two


def _endpoint_id(url: str) -> tuple[str, str, int | None, str, str] | None:
    """(scheme, host, port, API root, query) of base URL `url`, its host "loopback" for any loopback one; None for
    what is no URL (the simulator built in: "in process")."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    path = parts.path.rstrip("/")
    for suffix in API_ROOTS:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return scheme, "loopback" if loopback else host, port, path, parts.query


def diff(plan: Plan, stored: Mapping[str, Stored], previous: Mapping[str, str], *, force: bool = False,
         retry: str | None = None, sent_again_by: Callable[[str, bool, bool], str | None] | None = None,
         force_only: frozenset[str] | None = None, picks: Callable[[str, str | None], bool] | None = None) -> Diff:
    """Compare `plan` with stored jobs (by hash) and the previous run's key -> hash. With `force`, as a
    `run --force` does: every job sent (again), but those in flight and those of unknown outcome. With `retry`
    ("retry" or "retry --unknown", `RETRY_COMMANDS`), as that command does: the settled jobs it sends again are
    sent, paid again. `sent_again_by(state, gone)`: the command of `RETRY_COMMANDS` that sends a settled job of
    that stored state again (`resume.action` decides, as for the run; `api.diff` gives it), None: none does;
    called as `sent_again_by(state, gone, no_url)` with the job's `Stored.gone` and `Stored.no_url`. `force_only`:
    with `force`, as `run --force --resume` does: of the jobs a run sent before, only those of these hashes (the
    done jobs the last --force run left unsent, `Store.force_unsent`) are sent again; the rest as a plain run.
    `picks(key, error)`: with `retry`, whether it sends the settled job of that key and last error again (`retry
    --key/--code`, `RunOptions.picks`); those it does not pick are as a plain run has them."""
    if retry is not None and retry not in RETRY_COMMANDS:
        raise ValueError(f"retry: one of {', '.join(RETRY_COMMANDS)}, got {retry!r}")
    reasons: dict[str, str] = {}
    retried_by: dict[str, str] = {}
    new = cached = in_flight = settled = refetch = unknown = forced = retried = retried_billed = retried_unknown = 0
    retried_unreported = 0
    changed: list[str] = []
    following: list[str] = []
    verified: set[str] = set()
    kept: set[str] = set()
    altered: list[str] = []
    simulator_at: dict[str, str] = {}
    looked_up: list[str] = []
    copied: list[tuple[str, str]] = []
    unchecked: list[str] = []
    elsewhere: dict[str, str] = {}
    anew: dict[str, str] = {}
    fetch_first: list[str] = []
    unanswered: list[str] = []
    candidates: list[tuple[str, str | None]] = []
    refused: dict[str, tuple[str, str, str]] = {}
    for job in plan.jobs:
        s = stored.get(job.hash)
        old = previous.get(job.key)
        if s is not None and s.state == "done" and s.output_path == job.output_str:
            if s.output_ok:
                verified.add(job.output_str)
            elif s.output_altered:
                altered.append(job.output_str)
        if old is not None and old != job.hash:
            changed.append(job.key)
        if s is not None and s.state == "done" and s.simulator_at is not None:
            simulator_at[job.key] = s.simulator_at
        by, settled_before = None, settled
        if s is not None and s.state in _SETTLED and sent_again_by is not None:
            by = sent_again_by(s.state, s.gone, s.no_url)
        picked = s is None or picks is None or picks(job.key, s.error)
        if by is not None and by == retry and s is not None:
            candidates.append((job.key, s.error))
        # done, its input image moved away since: nothing to send it with, --force or not (`Plan.images_gone`)
        imageless = s is not None and s.state == "done" and job.hash in plan.images_gone
        if simulator_left(s, plan.endpoint[0]):
            assert s is not None and s.sent_to is not None
            reasons[job.key] = sent_anew(s.sent_to)
            new += 1
            anew[job.key] = s.sent_to
        elif by is not None and by == retry and picked:
            assert s is not None
            if s.state == "unknown":
                reasons[job.key] = RETRIED_UNKNOWN
                retried_unknown += 1
            elif s.billed:
                reasons[job.key] = RETRIED
                retried_billed += 1
            elif s.unreported:
                reasons[job.key] = RETRIED_UNREPORTED
                retried_unreported += 1
            else:
                reasons[job.key] = RETRIED_UNPAID
            if s.state != "unknown" and (known := refused_again(s.state, s.error)) is not None:
                refused[job.key] = (s.state, *known)
            new += 1
            retried += 1
        elif force and (s is None or s.state in _FORCED) and not imageless and (
                force_only is None or s is None or s.state == "planned" or job.hash in force_only):
            reasons[job.key] = FORCED
            new += 1
            if s is not None and s.state != "planned":
                forced += 1
        elif s is not None and s.state == "done" and made_elsewhere(s.simulator_at, plan.endpoint[0]):
            reasons[job.key] = ELSEWHERE  # as --force sends it: its take kept aside, never overwritten
            new += 1
        elif s is None or s.state == "planned":
            reasons[job.key] = CHANGED if old is not None and old != job.hash else NEW
            new += 1
        elif s.state == "done" and s.output_ok and imageless and force:
            reasons[job.key] = (f"done, not rendered again: its input image {plan.images_gone[job.hash]} is not found "
                                "(put it back to render it again)")
            cached += 1
            kept.add(job.key)
        elif s.state == "done" and s.output_ok:
            of = f" of {s.done_run_of}" if s.done_run_of else ""
            own = "its own take, " if s.own_take else ""
            reasons[job.key] = f"cached: {own}done in run {s.done_run_id}{of}" if s.done_run_id else f"cached: {own}done"
            cached += 1
            kept.add(job.key)
            if s.output_path is not None and s.output_path != job.output_str:
                copied.append((s.output_path, job.output_str))
        elif s.state == "done" and s.restore_from is not None:
            # put back by the run from gridrun's own copy of the very take (SHA-256 checked), nothing fetched
            copy = relpath(Path(s.restore_from), plan.manifest.path.parent)
            reasons[job.key] = f"cached: its file missing or altered, restored from {copy}"
            cached += 1
        elif s.state == "done":
            reasons[job.key] = "done, but its file is missing or altered: download again"
            refetch += 1
        elif s.state in IN_FLIGHT and sent_elsewhere(s.sent_to, plan.endpoint[0]):
            assert s.sent_to is not None
            reasons[job.key] = (f"in flight ({s.state}) at {endpoint_named(s.sent_to)}, not the endpoint now: "
                                f"collected there, at no "
                                f"cost ({point_back(plan.manifest, s.sent_to)})")
            in_flight += 1
            elsewhere[job.key] = s.sent_to
        elif s.state in IN_FLIGHT and sent_with_another_key(s.sent_with, plan.key_print):
            assert s.sent_with is not None and plan.key_print is not None
            reasons[job.key] = (f"in flight ({s.state}) under another API key (fingerprint {s.sent_with}; "
                                f"{plan.key_print[1]} now: {plan.key_print[0]}): collected with that key, at no cost "
                                f"({key_back(plan.key_print, s.sent_with)})")
            in_flight += 1
        elif s.state == "submitting":
            # sent, its answer never recorded: a run finds it by its key (`Executor._reconcile`), and may send it
            reasons[job.key] = (f"in flight (submitting: its create sent, the answer not recorded): {RESENT_HOW}, "
                                f"up to {usd_text(job.cost_micros)}")
            in_flight += 1
            unanswered.append(job.key)
            if not s.senders:
                following.append(job.key)
        elif s.state in IN_FLIGHT:
            reasons[job.key] = f"in flight ({s.state}): attach, pay nothing new"
            in_flight += 1
            if s.state != "downloading" and not s.senders:
                following.append(job.key)
        elif s.state == "expired" and s.gone:
            reasons[job.key] = ("expired: the provider no longer has its video: left alone (gridrun retry renders it "
                                "again, paid)")
            settled += 1
            kept.add(job.key)
        elif s.state == "expired" and s.no_url:
            reasons[job.key] = (f"expired: the provider gave no fresh URL for it, only the one that expired: gridrun "
                                f"retry renders it again, paid again ({usd_text(job.cost_micros)}; a run asks once "
                                "more, not counted on)")
            settled += 1
        elif s.state == "expired" and retry == "retry" and picked:
            reasons[job.key] = (f"expired: a fresh URL is asked for first, at no cost; sent again, paid again "
                                f"({usd_text(job.cost_micros)}), only if the provider no longer has it or gives none")
            refetch += 1
            fetch_first.append(job.key)
        elif s.state == "expired":
            reasons[job.key] = ("expired: a fresh URL is asked for, at no cost (gridrun retry renders it again, paid, "
                                "only if the provider gives none)")
            refetch += 1
        elif s.state == "unknown" and sent_elsewhere(s.sent_to, plan.endpoint[0]) and retry != "retry --unknown":
            assert s.sent_to is not None
            reasons[job.key] = (f"unknown, sent to {endpoint_named(s.sent_to)}, not the endpoint now: looked up "
                                f"there, at no cost "
                                f"({point_back(plan.manifest, s.sent_to)}; gridrun retry --unknown sends it again here)")
            settled += 1
            unknown += 1
            elsewhere[job.key] = s.sent_to
        elif (s.state == "unknown" and retry != "retry --unknown"
              and sent_with_another_key(s.sent_with, plan.key_print)):
            assert s.sent_with is not None and plan.key_print is not None
            reasons[job.key] = (f"unknown, sent under another API key (fingerprint {s.sent_with}; "
                                f"{plan.key_print[1]} now: {plan.key_print[0]}): looked up with that key, at no cost "
                                f"({key_back(plan.key_print, s.sent_with)}; gridrun retry --unknown sends it again "
                                "with this one)")
            settled += 1
            unknown += 1
        elif s.state == "unknown" and s.lost:
            reasons[job.key] = ("unknown: its video asked for again by its id, at no cost, and followed if the "
                                "provider has it (gridrun retry --unknown sends it again)")
            settled += 1
            unknown += 1
        elif s.state == "unknown" and s.no_log:
            reasons[job.key] = ("unknown: the provider had no request log to look it up in when gridrun last asked, "
                                "so gridrun could not check whether it was made and paid for: looked up by its key "
                                "again, at no cost, and followed if found (gridrun retry --unknown sends it again, "
                                "may pay twice)")
            settled += 1
            unknown += 1
            unchecked.append(job.key)
            looked_up.append(job.key)
        elif s.state == "unknown":
            reasons[job.key] = ("unknown: looked up by its key in the provider's request log, at no cost, and sent "
                                "if the log shows it never arrived (gridrun retry --unknown sends it again)")
            settled += 1
            unknown += 1
            looked_up.append(job.key)
        else:
            reasons[job.key] = f"{s.state}: left alone (gridrun retry re-runs it)"
            settled += 1
            kept.add(job.key)
        if by is not None and settled > settled_before:  # left as it ended: the command that sends it again
            retried_by[job.key] = by
    keys = {j.key for j in plan.jobs}
    now = {j.hash: j.key for j in plan.jobs}
    # A job is its hash, a key only its name: a key gone whose hash the plan still has is that job renamed (the
    # key names the matrix values in the order the manifest gives them), not a job dropped.
    gone = [k for k in previous if k not in keys]
    stale = tuple(k for k in gone if previous[k] not in now)
    renamed = tuple((k, now[previous[k]]) for k in gone if previous[k] in now)
    return Diff(reasons, new, cached, in_flight, settled, tuple(changed), stale, refetch, tuple(following),
                verified=frozenset(verified), kept=frozenset(kept), unknown=unknown, altered=tuple(altered), renamed=renamed,
                simulator_at=simulator_at, forced=forced, retried_by=retried_by, retried=retried,
                retry_candidates=tuple(candidates), retried_billed=retried_billed, retried_unknown=retried_unknown,
                retried_unreported=retried_unreported,
                looked_up=tuple(looked_up), copied=tuple(copied), unchecked=tuple(unchecked),
                sent_elsewhere=elsewhere, anew=anew, fetch_first=tuple(fetch_first), unanswered=tuple(unanswered),
                refused_again=refused)


def relpath(path: str | os.PathLike[str], start: str | os.PathLike[str] | None = None) -> str:
    """`path` relative to `start`, by default the working folder; as it is where it has no relative path (another
    drive), or where the working folder was removed (a cleaned temporary folder, `git worktree remove`): a
    finished run's lines name its files absolute then, not "No such file or directory"."""
    try:
        return os.path.relpath(path, Path.cwd() if start is None else start)
    except (ValueError, FileNotFoundError):
        return str(path)


def summarize_sources(jobs: Sequence[Job]) -> dict[str, list[str]]:
    """Parameter -> the distinct places its values came from across `jobs` (for --explain)."""
    out: dict[str, list[str]] = {}
    for job in jobs:
        for name, src in job.sources.items():
            lst = out.setdefault(name, [])
            if src not in lst:
                lst.append(src)
    return out
