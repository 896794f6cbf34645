"""Files in the output folder: atomic writes, verification against recorded digests, sidecars."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import os
import re
import stat
import sys
import threading
import time
import zlib
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .images import NotRegular, open_regular
from .limits import (
    STICKY,
    code_file,
    file_size_fix,
    file_size_limit,
    os_reason,
    statvfs_near,
    too_many_open_files,
)

if TYPE_CHECKING:
    from .jobs import Job

# Opens a file of gridrun's own name (a lock, a `.part`) that is never to be followed when it is a link: one that a
# shared repository committed there would have gridrun write over the file it leads to. 0 where there is no flag.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def tmp_stem(name: str) -> str:
    """`name`, or for a long one its start and a checksum: the temporary file's name must fit where `name`
    just fits (255 bytes), with the dot, process and thread ids around it."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= 150:
        return name
    return f"{name[:32]}~{zlib.crc32(raw):08x}"


# The name of a temporary file of gridrun's (`atomic_write`, `_place`): `.<name>.<pid>.<thread id>.tmp`, a process
# id of at most 7 digits (Linux's largest is 4,194,304) and a thread id a pointer-sized number (12 digits or more)
# where a run removes them (not on Windows): a name of the user's such as `.notes.2024.20241206.tmp` is not one.
_OWN_TEMP = re.compile(r"\..+\.([0-9]{1,7})\.([0-9]{12,20})\.tmp")


def own_temp(name: str) -> int | None:
    """The process id in `name` when it is named as a temporary file of gridrun's (`atomic_write`); else None."""
    found = _OWN_TEMP.fullmatch(name)
    return None if found is None else int(found[1])


def atomic_write(
    path: str | Path, data: bytes | str, *, durable: bool = True, sync_folder_after: bool = True
) -> None:
    """Write `data` (text as UTF-8) to `path` all or nothing: readers see the old file or the new one, never a
    part. `durable` adds an fsync before the rename and one of the folder after it, so that the new file
    also outlives a power cut; with `sync_folder_after=False` a durable write leaves the folder's fsync to
    a caller that renames more files into it and syncs it once.

    Few system calls (no buffered file object, the folder made only when it is missing): downloads write
    sidecars from worker threads, and each call there is a trip through the interpreter lock.

    :raises OSError: naming `path` (its `filename`), not the temporary file, which the user never sees: a full
        disk (where a write names no file at all), no permission.
    """
    if isinstance(data, str):
        data = data.encode()
    # Paths as strings: pathlib's parsing costs more than the system calls do here.
    dest = os.fspath(path)
    tmp, fd = _temp_beside(dest)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, tmp, dest) from None
        raise
    if durable and sync_folder_after:
        sync_folder(tmp)


COPY_CHUNK = 1 << 20
"""The bytes a copy of a video reads at a time (`atomic_copy`): its memory, whatever the video weighs."""


def _open_source(path: str) -> Any:
    """`path` open to read, unbuffered: the file object `atomic_copy` reads its chunks from. A named pipe or a
    device is refused unread (`images.open_regular`), never waited on."""
    return open_regular(path, buffering=0)


def atomic_copy(
    src: str | Path, dest: str | Path, *, sha256: str | None = None, sync_folder_after: bool = True
) -> str | None:
    """Copy the file `src` to `dest` all or nothing, as `atomic_write` writes (a temporary file beside `dest`,
    fsync, rename, the folder's fsync unless `sync_folder_after=False`), streamed in chunks of `COPY_CHUNK`
    bytes: a video of gigabytes costs one chunk of memory, not its size. Returns the SHA-256 of the bytes
    copied, computed as they pass; with `sha256`, bytes of another digest (a file changed since it was
    checked) are not put at `dest`, and None is returned, nothing written.

    :raises OSError: reading `src` (naming it), or writing `dest` (naming `dest`, not the temporary file).
    """
    source = os.fspath(src)
    target = os.fspath(dest)
    digest = hashlib.sha256()
    with _open_source(source) as reader:
        tmp, fd = _temp_beside(target)
        buffer = bytearray(COPY_CHUNK)
        try:
            try:
                while True:
                    try:
                        count = reader.readinto(buffer)
                    except OSError as exc:
                        if exc.filename is None:
                            exc.filename = source
                        raise
                    if not count:
                        break
                    view = memoryview(buffer)[:count]
                    digest.update(view)
                    while view:
                        view = view[os.write(fd, view):]
                if sha256 is None or digest.hexdigest() == sha256:
                    fsync(fd)
            finally:
                os.close(fd)
            if sha256 is not None and digest.hexdigest() != sha256:
                os.unlink(tmp)
                return None
            os.replace(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, OSError) and exc.filename != source:
                raise _naming(exc, tmp, target) from None
            raise
    if sync_folder_after:
        sync_folder(tmp)
    return digest.hexdigest()


def _temp_beside(dest: str) -> tuple[str, int]:
    """A new temporary file beside `dest` for `atomic_write` and `atomic_copy` to fill and rename into its place,
    named as gridrun's (`own_temp`), its folder made if it is missing: (its path, a descriptor open to write).

    :raises OSError: naming `dest`, not the temporary file.
    """
    folder, name = os.path.split(dest)
    tmp = os.path.join(folder, f".{tmp_stem(name)}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        try:
            return tmp, os.open(tmp, _WRITE_FLAGS, 0o666)
        except FileNotFoundError:
            os.makedirs(folder or ".", exist_ok=True)
            return tmp, os.open(tmp, _WRITE_FLAGS, 0o666)
    except OSError as exc:
        raise _naming(exc, tmp, dest) from None


def _naming(exc: OSError, tmp: str, dest: str) -> OSError:
    """`exc`, met writing `tmp` for `dest`, as naming `dest`: the file the caller meant to write."""
    if exc.filename in (None, tmp):
        exc.filename, exc.filename2 = dest, None
    return exc


# What to do when a disk has room but no inode left for a new file (`inodes_out`): `df -h` shows it far from full.
INODES_FIX = "no free inodes (files) are left on its disk, though space is (`df -i` shows it): remove files there, or use another disk"


def inodes_out(path: str | os.PathLike[str]) -> bool:
    """The disk holding `path` (or the nearest folder above it that is there) has free space but no free inode,
    so that no new file can be made there: a write refused for "no space left" is then one for want of files,
    which freeing space does not cure. False where the file system counts no inodes (`f_files` 0) or cannot say."""
    st = statvfs_near(path)
    if st is None:
        return False
    return st.f_files > 0 and st.f_favail == 0 and st.f_bavail > 0


_TOLD: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar("export_told", default=None)


@contextlib.contextmanager
def told() -> Iterator[list[tuple[str, str]]]:
    """What `report` and `export` (and a run's final report) have to say in the block beside the files they write, as (kind, text), kind
    "note" (the run they chose was not the state's latest) or "warning" (videos they could not read), for the
    command to print; each said once."""
    said: list[tuple[str, str]] = []
    token = _TOLD.set(said)
    try:
        yield said
    finally:
        _TOLD.reset(token)


def tell(text: str, kind: str = "note") -> None:
    """Say `text` to the `told` block around this, if any, once."""
    said = _TOLD.get()
    if said is not None and (kind, text) not in said:
        said.append((kind, text))


# How the warning of posters that could not be written begins (`report.posters_not_written`).
POSTERS_NOT_WRITTEN = "poster not written: "


def write_problem(exc: OSError, *, then: str = "", refused: str = "",
                  folder: str | os.PathLike[str] | None = None) -> str:
    """What stopped a file from being written (`exc`: the file, the system's reason) and, where the reason says
    it, what to do: free space, or make the folder writable, `then` what (a command to run again). `refused`:
    what the write that failed kept from happening ("nothing was recorded or sent"), said before the fix.
    `folder`: the folder being written, named where the system's error names no file (a write to a file open
    already); without either, the fix names no disk or folder of its own ("the disk written to"). A file of
    gridrun's package, Python's or a library's (`limits.code_file`: a module imported late) that could not be
    opened for want of file descriptors is not named: what to do is said alone."""
    named = exc.filename2 or exc.filename
    reason = os_reason(exc)
    if named and too_many_open_files(exc) and code_file(named):  # a module imported late: not the user's file
        named, folder = None, None
    where = named or (os.fspath(folder) if folder is not None else None)
    text = f"{named}: {reason}" if named else f"writing in {where}: {reason}" if where else reason
    if refused:
        text = f"{text}; {refused}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        inodes = exc.errno == errno.ENOSPC and where and inodes_out(where)
        fix = (INODES_FIX if where else INODES_FIX.replace("its disk", "the disk written to")) if inodes else \
            "free space on its disk" if where else "free space on the disk written to"
    elif exc.errno == errno.EFBIG:  # a file-size limit (`ulimit -f`), not a full disk
        fix = file_size_fix(file_size_limit())
    elif STICKY in reason:  # the folder is writable: the file is another user's
        fix = "run gridrun as its owner, or give the manifest an output folder of your own (`outputs_dir:`)"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make its folder writable" if named else "make it writable" if where else \
            "make the folder written to writable"
    else:
        return text
    return f"{text}{': ' if refused else '; '}{fix}" + (f", then {then}" if then else "")


# What the system says of a write a full disk (or a quota) refused, as a problem's text carries it.
_FULL_DISK_SAID = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


# What the stamp script of a page sets (`stamp_path`), its JSON after it.
STAMP_SET = "window.gridrunStamp = "


def stamp_path(report: Path) -> Path:
    """Where the report at `report`, written by gridrun in an output folder, has its snapshot's stamp: a small
    script under the folder's `.runs/` (no manifest's output may be written there) that a live page loads every
    few seconds, from file:// too, and reloads only when the stamp is not the page's own snapshot."""
    return report.parent / ".runs" / f"{report.name}.stamp.js"


def _stamp_data(report: Path) -> dict[str, Any] | None:
    """The stamp of the page at `report` (`stamp_path`), read: None where there is none, or it is not one."""
    try:
        with open_regular(stamp_path(report)) as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith(STAMP_SET):
        return None
    try:
        data = json.loads(text[len(STAMP_SET):].rstrip().removesuffix(";"))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def stamp_ended(report: Path) -> dict[str, Any] | None:
    """What the stamp of the page at `report` says of the run that ended where it did not write the page over
    (`report.write_report`): {"run": its id, "text": what the page says, "full": whether for want of room,
    "interrupted": whether a Ctrl-C left it}; None where the page is there and the stamp says no such thing (the page
    is the run's last, or its run goes on), or no page is there."""
    data = _stamp_data(report)
    if data is None or not os.path.isfile(report):
        return None
    ended = data.get("ended")
    if not isinstance(ended, dict) or not isinstance(ended.get("run"), int) or not isinstance(ended.get("text"), str):
        return None
    return ended


def stamp_taken(report: Path) -> float | None:
    """When the snapshot of the page at `report` was read, as its stamp says (`runs[0].taken` of the page's data);
    None where its stamp says no time."""
    data = _stamp_data(report)
    taken = None if data is None else data.get("taken")
    return float(taken) if isinstance(taken, (int, float)) and not isinstance(taken, bool) else None


def ended_then(ended: Mapping[str, Any]) -> str:
    """What follows "`gridrun report M` writes it" of a page whose stamp says the run ended without writing it over
    (`stamp_ended`): " again once there is room" (a full disk), "" (a Ctrl-C), else " again once it can be written"."""
    if ended.get("full"):
        return " again once there is room"
    return "" if ended.get("interrupted") else " again once it can be written"


def disk_full(exc: OSError) -> bool:
    """`exc` is a write refused for want of room: no space left (or no inode), or a quota reached."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def says_disk_full(problem: str) -> bool:
    """`problem`, a write's problem as said (`write_problem`), is one of a disk with no room left."""
    return any(said in problem for said in _FULL_DISK_SAID)


def fsync(fd: int) -> None:
    """Write what `fd` holds through to the disk, so that it outlives a power cut: every durable write of gridrun's
    files goes through here. macOS's fsync leaves it in the drive's write cache: there F_FULLFSYNC flushes that
    too (plain fsync where the file system refuses it, as network shares and some external disks do)."""
    if sys.platform == "darwin":
        import fcntl

        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except (AttributeError, OSError):
            pass
    os.fsync(fd)


def sync_folder(path: str) -> None:
    """fsync the folder holding `path`, so that a rename into it outlives a power cut (where the system
    allows it; a failure to sync is not an error)."""
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """The SHA-256 of the regular file at `path`.

    :raises OSError: it cannot be read; `images.NotRegular`: it is no regular file (a folder, or a named pipe or a
        device put where a video goes, which is never read: opening a named pipe waits for a writer, and a device
        reads without end).
    """
    h = hashlib.sha256()
    with open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified(path: Path, sha256: str | None) -> bool:
    """The file is there and has the recorded digest."""
    return bool(sha256) and path.is_file() and sha256_file(path) == sha256


def sidecar_path(video: str | Path) -> Path:
    return Path(sidecar_name(os.fspath(video)))


def poster_path(video: str | Path) -> Path:
    """The poster frame beside `video`: same name, `.jpg`."""
    return Path(files_beside(os.fspath(video))[2])


def sidecar_name(video: str) -> str:
    """The sidecar beside `video`: same name, `.json`."""
    return files_beside(video)[1]


PART_RECORD_SUFFIX = ".take"
"""The suffix of a `.part` file's record (`video.mp4.part.take`): which take the bytes in it are of, for a later run
to go on from them (`runner.providers.download.PartialDownload.record`)."""


def files_beside(video: str) -> tuple[str, str, str]:
    """The files gridrun writes beside `video`, in this order: the `.part` file its download streams into
    (`video` + `.part`), its sidecar (same name, `.json`) and its poster frame (same name, `.jpg`). The one place
    these names are made, so that what plan checks before a job is paid for is what the download, the sidecar
    writer and the report then write."""
    stem = stem_of(video)
    return video + ".part", stem + ".json", stem + ".jpg"


def stem_of(video: str) -> str:
    """`video` without its extension: the sidecar and the poster beside it are this and `.json`, `.jpg`."""
    dot = video.rfind(".")
    slash = video.rfind(os.sep)
    # `os.path.splitext` made quick for the usual name, a dot after its first character (`v.mp4`, not `.mp4`):
    # a plan asks this of every job, twice
    if dot > slash + 1 and video[slash + 1] != "." and _SEP_ONLY:
        return video[:dot]
    return os.path.splitext(video)[0]


_SEP_ONLY = os.altsep is None  # paths have one separator, os.sep (Linux, macOS), as the quick splitext assumes


SIDECAR_FIELDS = frozenset({
    "key", "sweep", "hash", "values", "provider", "model", "request", "provider_id", "idempotency_key", "attempt",
    "cost_estimate_usd", "cost_usd", "cost_reported_usd", "sha256", "size", "duration", "submitted_at",
    "completed_at", "downloaded_at", "run_id",
})
"""The fields of every sidecar gridrun writes (`sidecar_writer`), as every version of it wrote them: a field
added later joins the sidecar, not this set, or the sidecars written before it would be taken as the user's."""


def gridrun_sidecar(video: Path) -> dict[str, Any] | None:
    """The sidecar beside `video` when gridrun wrote it: every field of `SIDECAR_FIELDS`, the job's key and
    hash and the video's SHA-256 as text. None when there is none, it is garbled, or it is a JSON file of the
    user's that shares its name, even one with a `hash` of its own."""
    try:
        with open_regular(sidecar_name(os.fspath(video))) as f:
            return _sidecar_doc(f.read())
    except OSError:
        return None


def _sidecar_doc(data: bytes) -> dict[str, Any] | None:
    """The sidecar of gridrun's that `data` (a sidecar file's bytes) holds, as `gridrun_sidecar` tells it."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(doc, dict) or not SIDECAR_FIELDS <= doc.keys():
        return None
    return doc if all(isinstance(doc[name], str) for name in ("key", "hash", "sha256")) else None


# The widest a poster is made (`report._make_poster`): a wider frame is scaled down to it, its height in proportion.
POSTER_MAX_WIDTH = 480


def poster_size(width: int, height: int) -> tuple[int, int]:
    """The size of the poster made of a frame of `width` x `height`: as it is, or scaled down to POSTER_MAX_WIDTH
    wide."""
    if width > POSTER_MAX_WIDTH:
        return POSTER_MAX_WIDTH, max(2, round(height * POSTER_MAX_WIDTH / width))
    return width, height


POSTER_MARK = b"gridrun poster"
"""The comment every poster gridrun writes carries (a JPEG COM segment, which Pillow puts right after the JFIF
header): what tells gridrun's poster from an image of the user's named like a video of the grid. Posters
written before it have none, and are kept like the user's images before a poster replaces them: nothing tells
them apart, and a copy of one is all it costs."""

_JPEG_HEAD = 512  # bytes read for the mark: the SOI marker, the JFIF header (18 bytes), then the comment


def gridrun_poster(path: Path) -> bool:
    """The file at `path` is a JPEG whose first comment is `POSTER_MARK`, found among its first few hundred
    bytes (the segments before the image data). False when there is none, it is unreadable or no JPEG."""
    try:
        with open_regular(path) as f:
            head = f.read(_JPEG_HEAD)
    except OSError:
        return False
    if head[:2] != b"\xff\xd8":
        return False
    pos = 2
    while pos + 4 <= len(head) and head[pos] == 0xFF:
        marker, length = head[pos + 1], int.from_bytes(head[pos + 2:pos + 4], "big")
        if marker == 0xFE:
            return head[pos + 4:pos + 2 + length] == POSTER_MARK
        if marker == 0xDA or length < 2:  # the image data starts: no comment before it
            return False
        pos += 2 + length
    return False


# How the image formats a browser shows begin: JPEG, PNG, GIF, WebP (RIFF....WEBP), BMP, AVIF/HEIC (....ftyp).
_IMAGE_STARTS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def broken_image(path: str | Path, size: int) -> bool:
    """The file at `path`, of `size` bytes, is no image at all: empty (what a power cut leaves of a new file
    renamed into place before its data reached the disk), or beginning as no image format a browser shows
    does (garbled). Its first bytes alone are read; one that cannot be read is not said to be broken."""
    if size == 0:
        return True
    try:
        with open_regular(path) as f:
            head = f.read(12)
    except OSError:
        return False
    if head.startswith(_IMAGE_STARTS):
        return False
    return not ((head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head[4:8] == b"ftyp")


def broken_poster(path: str, st: os.stat_result, digests: Digests | None = None) -> bool:
    """`broken_image` of the poster at `path` (`st`: its stat), remembered in `digests` while the file stays as
    it was: the poster of every done job is looked at by each report."""
    if digests is None:
        return broken_image(path, st.st_size)
    seen = ["image", *_identity(st)]
    known = digests.verdict(path, seen)
    if known is not None:
        return known
    broken = broken_image(path, st.st_size)
    if _stat_identity(path) == seen[1:]:  # not replaced while it was read
        digests.remember(path, seen, broken, st.st_mtime_ns)
    return broken


def keep_broken_poster(video: Path, folder: Path) -> None:
    """Keep once, in `folder` (the job's under `superseded_dir`), the non-empty file that sits where `video`'s
    poster goes and is no image (`broken_image`), as any file with no poster mark is kept before a poster
    replaces it: garbled, most likely, but nothing here tells that it is not the user's.

    :raises OSError: it could not be kept (the poster must then not be written over it).
    """
    _keep_lone_poster(video, folder, once=True)


def foreign_poster(video: Path) -> bool:
    """A file sits where `video`'s poster goes (its `.jpg`) that nothing tells is gridrun's: it has no poster
    mark (`gridrun_poster`). A sidecar of gridrun's beside `video` does not make it gridrun's: the user may put
    an image there, and an earlier version's poster, which has no mark either, is only kept once."""
    poster = poster_path(video)
    return poster != video and poster.is_file() and not gridrun_poster(poster)


def poster_kept(poster: Path, folder: Path) -> bool:
    """A copy of the file at `poster` (same name, same SHA-256) is kept in `folder` (a job's folder under
    `superseded_dir`) at another path than `poster`'s: writing a poster over it loses nothing."""
    try:
        sha256 = sha256_file(poster)
    except OSError:
        return False
    return _kept_in(folder, poster, sha256)


def _kept_in(folder: Path, image: Path, sha256: str) -> bool:
    """A file named like `image`, with digest `sha256`, is in one of `folder`'s takes, at another path than
    `image` (a link to it is a copy: a poster written over `image` replaces its name, not the file)."""
    here = os.path.abspath(image)
    try:
        takes = [entry.path for entry in os.scandir(folder) if entry.is_dir()]
    except OSError:
        return False
    for take in takes:
        copy = os.path.join(take, image.name)
        if os.path.abspath(copy) != here and verified(Path(copy), sha256):
            return True
    return False


class Aside(NamedTuple):
    """What a run would keep under .runs/superseded/ of the files at its jobs' paths, as `gridrun plan` tells it
    beforehand (`kept_aside`)."""

    unrecorded: tuple[str, ...]  # videos whose sidecar of gridrun's names a render the state has no record of
    images: tuple[str, ...]      # images with no poster mark where a job's poster goes
    # videos whose sidecar of gridrun's names a render the state recorded, of another job than the one whose video
    # goes there (a copy a renamed sweep's run left where a new job of the old name goes): replaced, not kept
    others: tuple[str, ...] = ()
    # videos whose sidecar names the very job whose video goes there (its key) and an earlier request of it, whose
    # take the state keeps at another path (copied aside as the request changed): that job's own earlier take
    own: tuple[str, ...] = ()
    # of `unrecorded`, videos this state made (their sidecars' keys carry its key part) whose records it lost, that a
    # `gridrun recover` left as they are: a video edited or cut short since, a sidecar holding a figure out of range
    left: tuple[str, ...] = ()
    # of `left`, those whose sidecars hold a figure no download writes (`recover._out_of_range`)
    left_out_of_range: tuple[str, ...] = ()


NOTHING_ASIDE = Aside((), ())


def kept_aside(videos: Iterable[str], posters: Iterable[str], *, skip_videos: Container[str],
               skip_posters: Container[str], renders: Callable[[str], Container[str]],
               hashes: Mapping[str, str] | None = None) -> Aside:
    """Of the files plan found in the way (`videos`: video paths where a file sits with a sidecar beside it;
    `posters`: video paths whose poster's place a file holds), those a run keeps aside as `keep_file` does: a
    video whose sidecar of gridrun's names a render that `renders` (job hash -> the provider ids the state recorded
    for it) does not have (event unrecorded-kept), and an image with no poster mark (`foreign_poster`, event
    foreign-kept). `skip_videos`, `skip_posters`: the paths of the videos a run leaves where they are (a done job's
    recorded take), or that are told of already. Reads those sidecars and images' first bytes: no video is hashed
    (a video of the state's edited in place with its sidecar beside it is not told). With `hashes` (video path ->
    the hash of the job whose video goes there), a video whose sidecar names a render the state recorded of another
    job (`others`), which the job's own video replaces as a take of the state's (not kept)."""
    unrecorded, others = [], []
    for video in videos:
        if video in skip_videos:
            continue
        doc = gridrun_sidecar(Path(video))
        if doc is None:
            continue
        if doc["provider_id"] not in renders(doc["hash"]):
            unrecorded.append(video)
        elif hashes is not None and hashes.get(video, doc["hash"]) != doc["hash"]:
            others.append(video)
    images = tuple(str(poster_path(v)) for v in posters if v not in skip_posters and foreign_poster(Path(v)))
    return Aside(tuple(unrecorded), images, tuple(others))


DIGESTS_NAME = "digests.json"
# A file modified this recently may still change within its timestamp's tick: its digest is not remembered.
_SETTLED_NS = 2_000_000_000


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


class Digests:
    """The SHA-256 of videos hashed before, remembered by path with what their file was when hashed (size,
    modification and change times, inode, device): a video is read again only once one of those changed (an edit
    in place, another file moved onto its path, a copy). Kept in `path` (`digests.json` of the state folder);
    one that cannot be read or written costs only the hashing again.

    The verdicts of the checks a report makes of every done job's files, each reading a few bytes (whether a video
    holds its take, told from its sidecar: `holds_take`; whether a poster is an image at all: `broken_poster`),
    are remembered there too, with what each file the check looked at was then: a report of a folder unchanged
    since looks at each file's times and reads none of them. (In the same file, not one beside it: a `state_dir:`
    folder's `.gitignore` names gridrun's files there one by one.)"""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._known: dict[str, list[Any]] | None = None
        self._new: dict[str, list[Any]] = {}
        self._known_checks: dict[str, list[Any]] = {}
        self._new_checks: dict[str, list[Any]] = {}

    def _read(self) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """The digests and the verdicts of checks the file holds; none of either when it is unreadable or
        garbled, and only the entries of the right form."""
        if self.path is None:
            return {}, {}
        try:
            doc = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}, {}
        if not isinstance(doc, dict) or doc.get("version") != 1:
            return {}, {}
        files, checks = doc.get("files"), doc.get("checks")
        files = ({p: e for p, e in files.items() if isinstance(e, list) and len(e) == 6 and isinstance(e[5], str)}
                 if isinstance(files, dict) else {})
        checks = ({p: e for p, e in checks.items() if isinstance(e, list) and e and isinstance(e[-1], bool)}
                  if isinstance(checks, dict) else {})
        return files, checks

    def _load(self) -> None:
        if self._known is None:
            self._known, self._known_checks = self._read()

    def sha256(self, path: str, st: os.stat_result) -> str:
        """The SHA-256 of the file at `path`, `st` its stat: remembered, or read and remembered when the file
        was not changing meanwhile nor modified in the last seconds."""
        self._load()
        ident = _identity(st)
        entry = self._new.get(path) or (self._known or {}).get(path)
        if entry is not None and entry[:5] == ident:
            return str(entry[5])
        digest = sha256_file(Path(path))
        with contextlib.suppress(OSError):
            if _identity(os.stat(path)) == ident and time.time_ns() - st.st_mtime_ns > _SETTLED_NS:
                self._new[path] = [*ident, digest]
        return digest

    def verdict(self, path: str, seen: list[Any]) -> bool | None:
        """The verdict remembered of a check of the file at `path` made when what it depends on was `seen` (the
        kind of check, what it was asked, the identity of each file it read); None when none was, or then
        something else was."""
        self._load()
        entry = self._new_checks.get(path) or self._known_checks.get(path)
        if entry is not None and entry[:-1] == seen:
            return bool(entry[-1])
        return None

    def remember(self, path: str, seen: list[Any], verdict: bool, modified_ns: int) -> None:
        """Remember `verdict`, of a check of the file at `path` made when what it depends on was `seen`, unless
        a file it read was modified in the last seconds (`modified_ns`: the latest modification time of them),
        and may change still within its timestamp's tick."""
        if time.time_ns() - modified_ns > _SETTLED_NS:
            self._new_checks[path] = [*seen, verdict]

    def save(self) -> None:
        """Write the digests and verdicts found since the last save, with those another command wrote meanwhile;
        entries of files no longer there are dropped."""
        if not (self._new or self._new_checks) or self.path is None:
            return
        files, checks = self._read()
        merged = {p: e for p, e in {**files, **self._new}.items() if os.path.lexists(p)}
        merged_checks = {p: e for p, e in {**checks, **self._new_checks}.items() if os.path.lexists(p)}
        try:
            atomic_write(self.path, json.dumps({"version": 1, "files": merged, "checks": merged_checks},
                                               separators=(",", ":")), durable=False)
        except OSError:
            return
        self._known, self._new, self._known_checks, self._new_checks = merged, {}, merged_checks, {}


_UNREADABLE: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("unreadable", default=None)


@contextlib.contextmanager
def unreadable_videos() -> Iterator[dict[str, str]]:
    """The videos `holds_take` was refused reading in the block (permission denied: a teammate's file or folder
    this user may not read), as path -> who may read it (`_who_may_read`). In the block such a video is taken as
    holding the take it is recorded as, not as gone: a report or results written there name it as not readable
    here, never as missing (which would advise paying to render it again)."""
    found: dict[str, str] = {}
    token = _UNREADABLE.set(found)
    try:
        yield found
    finally:
        _UNREADABLE.reset(token)


def unreadable_why(path: str | None) -> str | None:
    """Who may read the video at `path` when the `unreadable_videos` block around this found it not readable
    here; else None."""
    found = _UNREADABLE.get()
    return None if found is None or path is None else found.get(os.fspath(path))


def _who_may_read(path: str) -> str:
    """Why the file at `path` cannot be read, for a message: the owner and mode of the file, or, when it cannot
    even be looked at, of the nearest folder above it that can (the one that keeps it from this user)."""
    at = Path(path)
    for place in (at, *at.parents):
        try:
            st = os.stat(place)
        except OSError:
            continue
        what = "" if place == at else f"its folder {place}: "
        return f"{what}owner uid {st.st_uid}, group {st.st_gid}, mode {stat.S_IMODE(st.st_mode):04o}"
    return "owner unknown"


def _unreadable(path: str, exc: OSError) -> bool:
    """Whether `exc`, raised reading the video at `path`, is a refusal to read it (EACCES, EPERM) inside an
    `unreadable_videos` block, which records it."""
    found = _UNREADABLE.get()
    if found is None or not isinstance(exc, PermissionError):
        return False
    found.setdefault(path, _who_may_read(path))
    return True


def holds_take(video: str | Path, job_hash: str, sha256: str, digests: Digests | None = None) -> bool:
    """The file at `video` is this take of the job (`job_hash`): its bytes have the digest `sha256`. Told from
    the sidecar of gridrun's beside it when that names the job and this digest and the video was not written
    since it was (a video is in place before its sidecar is written, moved or copied with it): nothing is read of
    the video then. A sidecar naming another job or take says it is not; a video newer than its sidecar (edited
    in place, or copied after it), of another length than it records (another file copied over it with its times
    kept, `cp -p`) or with no sidecar of gridrun's is hashed, once while it is unchanged when
    `digests` remembers it. With `digests`, the verdict itself is remembered while the video and its sidecar
    stay as they were (`Digests.verdict`): a report of a big run looks again at each file's times, not into its
    sidecar. A video this user may not read is not this take, except in an `unreadable_videos`
    block, where it is, and is recorded there."""
    path = os.fspath(video)
    if not path.isascii():
        from .localpaths import unnameable

        cannot = unnameable(path)  # a locale whose file-name encoding is not UTF-8 would look for other bytes
        if cannot is not None:
            from .errors import UsageError

            raise UsageError(f"{ascii(path)[1:-1]}: {cannot}")
    try:
        made = os.stat(path)
    except OSError as exc:
        return _unreadable(path, exc)
    except UnicodeEncodeError as exc:  # a name beyond this process's file-name encoding: the locale's doing, said so
        from .errors import UsageError
        from .localpaths import why_unusable

        # escaped as `plan` writes it, as an output that cannot show the character writes it (`\xe9pique`)
        raise UsageError(f"{ascii(path)[1:-1]}: {why_unusable(exc)}") from None
    if not stat.S_ISREG(made.st_mode):
        return False
    if _UNREADABLE.get() is not None and not os.access(path, os.R_OK):  # its sidecar may be readable, it not
        return _unreadable(path, PermissionError(errno.EACCES, os.strerror(errno.EACCES), path))
    side = sidecar_name(path)
    if digests is None:
        return _take_verdict(path, made, side, job_hash, sha256, None)[0]
    # what the verdict depends on: the video's identity, its sidecar's, what is asked
    side_was = _stat_identity(side)
    seen = ["take", *_identity(made), side_was, job_hash, sha256]
    known = digests.verdict(path, seen)
    if known is not None:
        return known
    verdict, read = _take_verdict(path, made, side, job_hash, sha256, digests)
    if read is not None and read[0] == side_was:  # the sidecar read is the one looked at (or none both times)
        digests.remember(path, seen, verdict, max(made.st_mtime_ns, read[1]))
    return verdict


def _stat_identity(path: str) -> list[int] | None:
    try:
        return _identity(os.stat(path))
    except OSError:
        return None


def _take_verdict(path: str, made: os.stat_result, side: str, job_hash: str, sha256: str,
                  digests: Digests | None) -> tuple[bool, tuple[list[int] | None, int] | None]:
    """`holds_take`'s verdict of the regular file at `path` (`made`: its stat) with its sidecar at `side`, and the
    identity and modification time of the sidecar it read (None and 0 when there was none), or None when the
    verdict is not one to remember (the video could not be read)."""
    try:
        with open_regular(side) as f:
            raw = f.read()
            fst = os.fstat(f.fileno())
        doc, written, read = _sidecar_doc(raw), fst.st_mtime_ns, (_identity(fst), fst.st_mtime_ns)
    except OSError:
        doc, written, read = None, 0, (None, 0)
    if doc is not None:
        if doc["hash"] != job_hash or doc["sha256"] != sha256:
            return False, read
        if made.st_mtime_ns <= written and doc.get("bytes", made.st_size) == made.st_size:
            return True, read
    try:
        return (sha256_file(Path(path)) if digests is None else digests.sha256(path, made)) == sha256, read
    except OSError as exc:
        return _unreadable(path, exc), None


def sidecar_matches(video: Path, job_hash: str, provider_id: str) -> str | None:
    """The digest of `video` when its sidecar names this job, this render of it (`provider_id`: an earlier
    render of a job sent again has the same hash) and that digest; else None."""
    doc = gridrun_sidecar(video)
    if doc is None or doc["hash"] != job_hash or doc["provider_id"] != provider_id or not video.is_file():
        return None
    return doc["sha256"] if sha256_file(video) == doc["sha256"] else None


def copy_output(src: Path, dest: Path, job: Job | None = None) -> None:
    """Copy a finished video and its sidecar (a cached job whose output path differs). A sidecar that cannot be
    written (a full disk) takes the video's copy with it: alone, no sidecar saying whose it is, the next run
    would keep it aside as a file not gridrun's before copying it again. Streamed (`atomic_copy`): a video may
    weigh more than the memory there is. `job`: the job the copy is for, whose key and values its sidecar
    then says (`for_job`)."""
    atomic_copy(src, dest)
    side = sidecar_path(src)
    if side.is_file():
        try:
            data = side.read_bytes()
            atomic_write(sidecar_path(dest), data if job is None else for_job(data, job))
        except OSError:
            with contextlib.suppress(OSError):
                dest.unlink()
            raise


def for_job(data: bytes, job: Job) -> bytes:
    """The sidecar `data` of a video copied for `job`, the same request under another key (a row inserted and the
    ids numbered again, a sweep renamed): its `key`, `sweep` and `values` are the job's, as a script mapping videos
    to rows reads them, and `made_as_key` keeps the key it was made under; the rest (the request, its hash, the
    render, the video's SHA-256 and size) is the video's as it was. `data` as it is when it is not a sidecar of
    gridrun's or already names the job. `made_as_key` is left out when it is the job's own key (a job renamed
    back)."""
    doc = _sidecar_doc(data)
    if doc is None or doc["key"] == job.key and doc.get("sweep") == job.sweep and doc.get("made_as_key") != job.key:
        return data
    made = doc.get("made_as_key") or doc["key"]
    doc = {k: v for k, v in doc.items() if k != "made_as_key"}
    doc.update({"made_as_key": made} if made != job.key else {})
    doc.update(key=job.key, sweep=job.sweep, values=dict(job.values))
    return json.dumps(doc, default=str).encode() + b"\n"


def names_another_job(doc: Mapping[str, Any], job: Job) -> bool:
    """Whether gridrun's sidecar `doc` of `job`'s very video names the job as it was made or last copied, not as it
    is now (`for_job` writes it again): an axis or sweep renamed while its output path stays the same."""
    return doc["key"] != job.key or doc.get("sweep") != job.sweep or doc.get("made_as_key") == job.key


class Take(NamedTuple):
    """An earlier take `keep_take` kept: where, and the image without gridrun's poster mark it kept at its
    poster's place (`Kept`, event foreign-kept), if any."""

    path: Path
    poster: Kept | None


def keep_take(video: Path, sha256: str, folder: Path) -> Take | None:
    """Keep the earlier take of a job that `video` holds (its digest `sha256`), with its sidecar when that
    names it, as `folder/<sha256[:16]>/<name>`, before a new take replaces it: linked where the file system
    allows (the replacing rename then leaves it there), else copied. A `.jpg` of its name with no poster mark
    (`foreign_poster`: the user's image, or an earlier version's poster) is kept beside it, where a report of
    the run that made the take looks for its poster; a poster of gridrun's is not, a report makes it again from
    the kept video. What was kept, or None when `video` is not that take (missing, altered, or already the new
    one)."""
    if not verified(video, sha256):
        return None
    aside = _keep(video, sha256, folder)
    doc = gridrun_sidecar(video)
    if doc is not None and doc["sha256"] == sha256:
        atomic_write(sidecar_path(aside), sidecar_path(video).read_bytes(), sync_folder_after=False)
    image = _keep_image_beside(video, aside, folder)
    sync_folder(os.fspath(aside))
    return Take(aside, image)


def _keep_image_beside(video: Path, aside: Path, folder: Path) -> Kept | None:
    """Keep the `.jpg` of `video`'s name when it has no poster mark beside `aside`, the take kept from
    `video`; under its own digest instead (as a lone one) when another image of the user's holds that place.
    What was kept, or None."""
    found = _foreign_image(video)
    if found is None:
        return None
    image, sha256 = found
    place = aside.with_name(image.name)
    if place.exists() and not verified(place, sha256) and not gridrun_poster(place):
        place = take_path(folder, sha256, image.name)
    return Kept(_place(image, sha256, place), sha256, "foreign-kept")


def left_by_runs(outputs_dir: Path) -> Path | None:
    """A file that a run recorded in a state leaves in `outputs_dir`: its manifest copy (`.runs/run-N.yaml`,
    written as the run is recorded), else a video's sidecar (the first found); None in a folder no run wrote in."""
    copies = sorted((outputs_dir / ".runs").glob("run-*.yaml"))
    if copies:
        return copies[0]
    for root, folders, files in os.walk(outputs_dir):
        folders.sort()
        for name in sorted(files):
            if name.endswith(".json") and gridrun_sidecar(Path(root) / name) is not None:
                return Path(root) / name
    return None


# The folders gridrun keeps in an output folder for itself: each run's manifest copy and the folder's lock
# (.runs/), the files runs replaced (.runs/superseded/, its manifests/). None may be a link: what is written there
# would land wherever it leads. Nor may anything under .runs/superseded/ (a job's folder, named by the first 16 of
# its hash, which the manifest tells; `files/`; the folders of the takes in them): a take kept there would land
# where the link leads, out of the project.
OWN_FOLDERS = (".runs", os.path.join(".runs", "superseded"), os.path.join(".runs", "superseded", "manifests"))
# The output folder's lock file (`Store.lock_outputs`), never opened through a link.
OUTPUTS_LOCK = os.path.join(".runs", "lock")


def leads_out(folder: str, out_dir: str) -> str | None:
    """Where `folder`, a link (or a folder under one), really is when that is outside `out_dir` (a real path:
    links followed); None when it stays inside. Compared as the file system names them (`realpath`)."""
    real = os.path.realpath(folder)
    inside = real == out_dir or real.startswith(out_dir.rstrip(os.sep) + os.sep)
    return None if inside else real


def own_folder_link(out_dir: str | Path) -> tuple[str, str, str] | None:
    """The first of gridrun's own folders in `out_dir` (`OWN_FOLDERS`) that is a link, else the output folder's
    lock file (`OUTPUTS_LOCK`), else a link anywhere under `.runs/superseded/`: (the link, where it leads, what
    it is: "folder", "lock" or "kept"); None when none is (one look each where they are, and a walk of
    `.runs/superseded/` where there is one)."""
    for name in OWN_FOLDERS:
        path = os.path.join(out_dir, name)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return path, os.path.realpath(path), "folder"
        except OSError:  # not there (nor what is under it): made as folders
            break
    runs = os.path.join(out_dir, ".runs")
    lock = os.path.join(out_dir, OUTPUTS_LOCK)
    if os.path.islink(lock):
        return lock, os.path.realpath(lock), "lock"
    return _kept_link(os.path.join(runs, "superseded"), ("files", "manifests"))


def _kept_link(folder: str, within: tuple[str, ...] = ()) -> tuple[str, str, str] | None:
    """The first link in `folder` (under `.runs/superseded/`: a job's folder, named by its hash, `files/`,
    `manifests/`), then in its folders named in `within` (`files/` and `manifests/`: the folders named by a kept
    file's digest), as `own_folder_link` gives it; None when there is none (read off the folders' listings: no look
    at each, and a folder of `within` listed only where `folder`'s listing holds it). The folders of the takes in a
    job's folder, as many as its takes, are not listed here: a link among them is refused as a file is kept through
    it (`_no_link_under_runs`)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return None
    for entry in entries:
        if entry.is_symlink():
            return entry.path, os.path.realpath(entry.path), "kept"
    for entry in entries:
        if entry.name in within and entry.is_dir(follow_symlinks=False):
            found = _kept_link(entry.path)
            if found is not None:
                return found
    return None


def own_link_problem(out_dir: str | Path) -> str | None:
    """What is wrong when one of gridrun's own folders or files in `out_dir` is a link (`own_folder_link`); else
    None."""
    found = own_folder_link(out_dir)
    return None if found is None else own_link_said(found)


def own_link_said(found: tuple[str, str, str]) -> str:
    """What is wrong with the link `own_folder_link` found (`found`: the link, where it leads, what it is)."""
    link, target, kind = found
    if kind == "lock":
        return (f"{link} is a link to {target}: gridrun writes the output folder's lock there and never through a "
                "link; remove the link")
    if kind == "kept":
        return (f"{link} is a link to {target}: gridrun keeps the files runs replaced under .runs/superseded/ and "
                "writes none through a link; replace the link with what it leads to (or remove it)")
    return (f"{link} is a link to {target}: gridrun keeps its own files there (each run's manifest copy, the "
            "folder's lock, the files runs replaced) and writes none through a link; replace the link with a "
            "folder (move what it holds into it)")


def superseded_dir(outputs_dir: str | Path) -> Path:
    """Where the videos that runs replace in an output folder are kept, one folder per job (`<hash[:16]>/`),
    one per take in it (`take_path`)."""
    return Path(outputs_dir) / ".runs" / "superseded"


# How the files gridrun writes beside the videos begin, as every version of it has written them: a report (and a
# compare report) holds its generator tag near its top, an export begins with its first column, or its version.
_OWN_STARTS = {".csv": b"key,sweep,hash,", ".json": b'{\n "version": ', ".jsonl": b'{"key":'}
_HTML_MARK = b'<meta name="generator" content="gridrun">'


def foreign_file(path: str | Path) -> bool:
    """A file is at `path` (report.html, results.csv, ...) that gridrun did not write: not empty, and not
    beginning as gridrun's do (`_OWN_STARTS`, the report's generator tag). A link, a folder, nothing there: False
    (a link is replaced, not written through)."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return False
        with open_regular(path) as f:
            head = f.read(4096)
    except OSError:
        return False
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".html", ".htm"):
        return _HTML_MARK not in head
    start = _OWN_STARTS.get(suffix)
    return start is None or not head.startswith(start)


def foreign_kept_path(outputs_dir: str | Path, sha256: str, name: str) -> Path:
    """Where a file gridrun did not write is kept when a report or an export of its takes its place in the output
    folder: `.runs/superseded/files/<sha256[:16]>/<name>`."""
    return superseded_dir(outputs_dir) / "files" / sha256[:16] / name


def keep_foreign(path: Path, outputs_dir: Path) -> Path | None:
    """Keep the file at `path` in `outputs_dir` (a report, an export) when gridrun did not write it
    (`foreign_file`), before one of its own takes its place: where it is kept, else None.

    :raises OSError: it cannot be kept (then nothing may replace it); one of gridrun's own folders is a link.
    """
    if not foreign_file(path):
        return None
    problem = own_link_problem(outputs_dir)
    if problem is not None:
        raise OSError(errno.EEXIST, f"{path} is a file gridrun did not write, and it cannot be kept aside: {problem}")
    sha256 = sha256_file(path)
    kept = _place(path, sha256, foreign_kept_path(outputs_dir, sha256, path.name))
    told = _KEPT_FOREIGN.get()
    if told is not None and kept is not None:
        told.append((path, kept))
    return kept


# The files `keep_foreign` kept aside while a command's `kept_foreign` block ran, for it to say.
_KEPT_FOREIGN: contextvars.ContextVar[list[tuple[Path, Path]] | None] = contextvars.ContextVar("kept_foreign",
                                                                                              default=None)


@contextlib.contextmanager
def kept_foreign() -> Iterator[list[tuple[Path, Path]]]:
    """The files gridrun did not write that `keep_foreign` keeps aside in the block (as (where it was, where it is
    kept)), so that the command that wrote over their place says where they went."""
    told: list[tuple[Path, Path]] = []
    token = _KEPT_FOREIGN.set(told)
    try:
        yield told
    finally:
        _KEPT_FOREIGN.reset(token)


def manifest_kept_path(outputs_dir: str | Path, data: bytes, name: str) -> Path:
    """Where a manifest copy `name` (run-N.yaml) holding `data` is kept when another text took its place in the
    output folder's .runs/ (another state's run N, a state begun again): named by the text's digest, so a state
    finds its own copy there again from the text it keeps."""
    return superseded_dir(outputs_dir) / "manifests" / hashlib.sha256(data).hexdigest()[:16] / name


def take_path(folder: Path, sha256: str, name: str) -> Path:
    """Where a take whose digest is `sha256`, named `name`, is kept in a job's `folder` under `superseded_dir`
    (`keep_take`, `keep_file`): `folder/<sha256[:16]>/<name>`."""
    return folder / sha256[:16] / name


class Kept(NamedTuple):
    """A file `keep_file` kept: where, its SHA-256, and the event that says so where it was in a new video's way
    (`kind`: foreign-kept, no sidecar of gridrun's records it; unrecorded-kept, a take of gridrun's whose render
    this state has no record of)."""

    path: Path
    sha256: str
    kind: str


def keep_file(
    video: Path, folder: Path, *, unless_recorded: bool, poster: bool, once: bool, known: Container[str] = (),
    replaced_by: str | None = None,
) -> Kept | None:
    """Keep what `video` holds now, with the sidecar beside it as it is (and with `poster` the `.jpg` of its
    name), as `folder/<its sha256[:16]>/<name>` like an earlier take (`keep_take`), before a job's download or
    copy replaces it. What was kept (`Kept`), or None when there is nothing to keep: no file (but with
    `poster`, a `.jpg` of its name that is not gridrun's, `foreign_poster`, is kept then, alone: the poster made
    once the video is in place would replace it); with `unless_recorded`, the take a sidecar of gridrun's
    beside it records (its SHA-256) when that sidecar's render is one this state recorded (its provider id in
    `known`, the caller's one look-up); with `once`, a copy kept already; a file no sidecar records with the
    digest `replaced_by`, that of the file about to take its place (a take renamed into place by a run killed
    before its sidecar was written, downloaded again), which the replacing leaves as it is.

    A done job's file that no longer has the digest its download recorded (edited or replaced in place) is
    kept whatever it is, even another job's take with its sidecar, and each time it is found (event
    altered-kept). A file where a job's video goes (the user's own, a take whose sidecar was lost, one edited
    in place) is kept unless it is gridrun's take as its sidecar records it, with its poster-named `.jpg`, and
    once: the same file kept as an altered take before its fetch is not kept again (event foreign-kept). Such a
    take is kept too when this state has no record of its render (event unrecorded-kept): another state's run
    wrote it (another manifest's `state_dir:`, a copied project, a state deleted and begun again), and the
    video that replaces it would be its only copy lost, paid for by a state that cannot fetch it again.

    With `poster`, a `.jpg` of its name that has no poster mark (`foreign_poster`) is kept alone where the file
    in the video's place is not (missing, gridrun's, kept already), once (event foreign-kept)."""
    lone = (lambda: _keep_lone_poster(video, folder, once=once)) if poster else (lambda: None)
    try:
        sha256 = sha256_file(video)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, NotRegular):
        return lone()  # nothing there, or no file (a named pipe, a device) that the new video's name replaces
    kind = "foreign-kept"
    if unless_recorded:
        doc = gridrun_sidecar(video)
        if doc is not None and doc["sha256"] == sha256:
            if doc["provider_id"] in known:
                return lone()  # the take its sidecar records, a render of this state's: gridrun's, as downloaded
            kind = "unrecorded-kept"
    if kind == "foreign-kept" and sha256 == replaced_by:
        return lone()  # no sidecar records it, and the file about to take its place is the same: nothing is lost
    if once and verified(take_path(folder, sha256, video.name), sha256):
        return lone()  # kept already: by an earlier run, or as an altered take before its fetch
    aside = _keep(video, sha256, folder)
    for beside in (sidecar_path(video), *((poster_path(video),) if poster else ())):
        if beside != video and beside.is_file():
            try:
                with open_regular(beside) as f:
                    data = f.read()
            except NotRegular:  # a named pipe or a device put there since: nothing to keep, never read
                continue
            atomic_write(aside.with_suffix(beside.suffix), data, sync_folder_after=False)
    sync_folder(os.fspath(aside))
    return Kept(aside, sha256, kind)


def _foreign_image(video: Path) -> tuple[Path, str] | None:
    """(The `.jpg` of `video`'s name, its SHA-256) when it has no poster mark (`foreign_poster`) and is readable;
    else None."""
    if not foreign_poster(video):
        return None
    image = poster_path(video)
    try:
        return image, sha256_file(image)
    except OSError:
        return None


def _keep_lone_poster(video: Path, folder: Path, *, once: bool) -> Kept | None:
    """Keep the `.jpg` of `video`'s name when it has no poster mark (`foreign_poster`), as `keep_file` keeps a
    file, when `keep_file` keeps no file with it: the poster made once the video is in place would replace it.
    With `once`, not when a copy is kept already (alone, or beside a take). What was kept, or None."""
    found = _foreign_image(video)
    if found is None:
        return None
    image, sha256 = found
    if once and _kept_in(folder, image, sha256):
        return None
    aside = _keep(image, sha256, folder)
    sync_folder(os.fspath(aside))
    return Kept(aside, sha256, "foreign-kept")


def _keep(video: Path, sha256: str, folder: Path) -> Path:
    """`video` (whose digest is `sha256`) as `take_path`, unless that is there already: linked where the file
    system allows, else copied."""
    return _place(video, sha256, take_path(folder, sha256, video.name))


def _place(video: Path, sha256: str, aside: Path) -> Path:
    """`video` (whose digest is `sha256`) at `aside`, unless that holds it already: linked where the file system
    allows, else copied. A link on the way below `.runs/` is refused (`_no_link_under_runs`).

    :raises OSError: it cannot be placed; a folder on the way is a link."""
    if not verified(aside, sha256):
        _no_link_under_runs(aside.parent)
        aside.parent.mkdir(parents=True, exist_ok=True)
        tmp = aside.with_name(f".{tmp_stem(aside.name)}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.link(video, tmp)
            os.replace(tmp, aside)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            atomic_copy(video, aside, sync_folder_after=False)
    return aside


def _no_link_under_runs(folder: Path) -> None:
    """Refuse to make or use `folder`, under an output folder's `.runs/`, when it or a folder between it and
    `.runs/` is a link: a file kept there would land wherever the link leads, out of the project.

    :raises OSError: naming the link and where it leads.
    """
    for path in (folder, *folder.parents):
        if os.path.islink(path):
            raise OSError(errno.ELOOP, f"{path} is a link to {os.path.realpath(path)}: gridrun keeps the files runs "
                          "replaced under .runs/superseded/ and writes none through a link; replace the link with "
                          "what it leads to (or remove it)", str(path))
        if path.name == ".runs":
            return


def sidecar_writer(
    job: Job,
    *,
    provider: str,
    model: str,
    provider_id: str,
    idempotency_key: str | None,
    attempt: int,
    billed_micros: int,
    reported_micros: int | None,
    submitted_at: float | None,
    completed_at: float | None,
    run_id: int,
    clock: Callable[[], float],
) -> Callable[[str], None]:
    """What writes a video's JSON sidecar (`sidecar_path`), given the video's SHA-256 once the video is
    durable: the job, its request and costs, where it was made, and when it was saved."""
    doc = {
        "key": job.key,
        "sweep": job.sweep,
        "hash": job.hash,
        "values": dict(job.values),
        "provider": provider,
        "model": model,
        "request": dict(job.params),
        "provider_id": provider_id,
        "idempotency_key": idempotency_key,
        "attempt": attempt,
        "cost_estimate_usd": job.cost_micros / 1e6,
        "cost_usd": billed_micros / 1e6,
        "cost_reported_usd": None if reported_micros is None else reported_micros / 1e6,
        "sha256": None,
        "size": list(job.size),
        "duration": job.duration,
        "submitted_at": submitted_at,
        "completed_at": completed_at,
        "downloaded_at": None,
        "run_id": run_id,
    }
    path = sidecar_name(job.output_str)

    def write(sha256: str) -> None:
        doc["sha256"], doc["downloaded_at"] = sha256, clock()
        try:  # the video's length, in place before its sidecar: another file copied over it keeping its times
            doc["bytes"] = os.stat(job.output_str).st_size  # (`cp -p`) is told by it without reading the video
        except OSError:
            doc.pop("bytes", None)
        # The C encoder (no indent). Not synced: the state is the record, and the sidecar its copy, which
        # every run checks and writes again when a power cut left it empty or garbled (`mend_sidecar`). The
        # download syncs the folder once after this rename and the video's, so the name outlives a power cut.
        atomic_write(path, json.dumps(doc, default=str).encode() + b"\n", durable=False)

    return write


# The standard streams a write to failed (`lost`), by name, with the system's reason: the command says so at its end.
UNWRITTEN: dict[str, str] = {}


def lost(stream: Any, exc: OSError) -> None:
    """A write to `stream`, standard output or error, failed other than by its reader going (`>/dev/full`, a full
    disk under a redirection, an I/O error): what is still written goes nowhere, and the command, its work done,
    says which stream it could not write (`UNWRITTEN`), not a file of its own, and exits 1 for it."""
    name = "standard error" if stream is sys.stderr else "standard output"
    UNWRITTEN.setdefault(name, os_reason(exc))
    with contextlib.suppress(OSError, ValueError):
        mute(stream)


def mute(stream: Any) -> None:
    """Send what is still written to `stream` nowhere: its reader is gone (`| head`, a closed terminal), the
    command goes on."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
