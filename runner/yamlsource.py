"""YAML 1.2 with a source position for every node: core-schema scalars (`on` and `no` are strings, `1:30`
is a string), keys repeated in one mapping refused, aliases that would blow up refused, and every problem
a `ManifestError` naming file, line and column.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from runner.errors import ManifestError, ManifestErrors
from runner.localpaths import shown, why_unusable

Position = tuple[int, int]
Positions = dict[tuple[Any, ...], Position]
# positions[path + (LITERAL_BLOCK,)]: where the first line of a literal block scalar (`|`) at `path` is, so that
# a template's own line N is found in the file as that line + N - 1 (no YAML key holds a NUL).
LITERAL_BLOCK = "\x00|"
# positions[path + (FOLDED_BLOCK,)]: the first and the last file line of a folded block scalar (`>`) at `path`, whose
# text joins its lines with spaces: a spot in it is found in the file by looking for its lines there in turn.
FOLDED_BLOCK = "\x00>"
_BLOCK_INDENT = re.compile(r"[^\r\n]*(?:\r\n?|\n)(?:[ ]*(?:\r\n?|\n))*([ ]*)")

_MAX_NODES = 1_000_000
# The text the strings of an expanded document hold, all told: ten times the largest manifest, which only aliases
# reach (a prompt of 100,000 characters repeated 1,000 times), where each copy is read again, and looked into for
# templates, at each place it appears.
_MAX_CHARS = 10_000_000
# A manifest is written by hand: a few KB, a long one some 100. Parsing YAML takes 1-5 s a MB, so a larger file is
# refused before it is read (long lists of values go in a data file, `{file: prompts.txt}`, read far faster).
MAX_BYTES = 1_000_000
# A manifest nests a handful of levels; PyYAML's composer, and every step after it, recurses once or twice a level
# and would meet Python's recursion limit (1,000 frames) at some 450.
_MAX_DEPTH = 100

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


# YAML 1.1 breaks lines at NEL, U+2028 and U+2029 too, and PyYAML's reader and scanner do, in a dozen places; YAML
# 1.2 breaks them at LF and CR only, the others being text (pasted from web pages and word processors). They are read
# as noncharacters (kept for a program's own use), so that they neither end a comment nor fold a string nor move the
# lines an error names, and given back in every scalar.
_BREAKS_OF_YAML_1_1 = "\x85\u2028\u2029"
_HELD = "\ufdd0\ufdd1\ufdd2"
_HOLD = str.maketrans(_BREAKS_OF_YAML_1_1, _HELD)
_GIVE_BACK = str.maketrans(_HELD, _BREAKS_OF_YAML_1_1)


def _held(text: str) -> str:
    """`text` with the line breaks of YAML 1.1 alone held as noncharacters; as it is when it holds none, or already
    holds one of those noncharacters (which could then not be told apart)."""
    if not any(c in text for c in _BREAKS_OF_YAML_1_1) or any(c in text for c in _HELD):
        return text
    return text.translate(_HOLD)


# A surrogate pair, as a double-quoted scalar's escapes write a character beyond U+FFFF (`"\ud83e\udd8a"`, as JSON,
# which is YAML too, and so `json.dump`, write it): PyYAML reads each escape as its own code point, where JSON reads
# the pair as the one character. A half alone is left as it is, which is not text (refused where it is read).
_PAIR = re.compile(r"[\ud800-\udbff][\udc00-\udfff]")


def _paired(m: re.Match[str]) -> str:
    high, low = m[0]
    return chr(0x10000 + ((ord(high) - 0xD800) << 10) + (ord(low) - 0xDC00))


class _Loader(yaml.SafeLoader):
    """PyYAML's SafeLoader with the YAML 1.2 core schema's implicit types instead of YAML 1.1's, and YAML 1.2's
    line breaks (LF and CR)."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    breaks_of_yaml_1_1 = False  # True: break lines at NEL, U+2028 and U+2029 too, as gridrun did before

    def __init__(self, stream: Any) -> None:
        if hasattr(stream, "read"):
            stream = stream.read()
        held = stream if self.breaks_of_yaml_1_1 or not isinstance(stream, str) else _held(stream)
        self._holds = held is not stream
        super().__init__(held)
        self._path: list[Any] = []  # the keys and indexes down to the node being composed
        # (id of a list, index) -> where the alias (*name) that is that item is written: PyYAML hands back the
        # anchored node itself, whose mark is the anchor's
        self.alias_marks: dict[tuple[int, int], yaml.Mark] = {}

    def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
        node: yaml.ScalarNode = super().compose_scalar_node(anchor)
        if self._holds:
            node.value = node.value.translate(_GIVE_BACK)
        if node.style == '"' and _PAIR.search(node.value):
            node.value = _PAIR.sub(_paired, node.value)
        return node

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """PyYAML's, refusing a list or mapping nested deeper than `_MAX_DEPTH` before the recursion limit does."""
        self._path.append(index.value if isinstance(index, yaml.ScalarNode) else index)
        try:
            if isinstance(parent, yaml.SequenceNode) and self.check_event(yaml.AliasEvent):
                self.alias_marks[(id(parent), index)] = self.peek_event().start_mark
            if len(self._path) > _MAX_DEPTH and not self.check_event(yaml.ScalarEvent, yaml.AliasEvent):
                raise _TooDeep(self.peek_event().start_mark, tuple(p for p in self._path if p is not None))
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._path.pop()


class _LoaderOfYaml11Breaks(_Loader):
    """The loader gridrun used before it broke lines as YAML 1.2 does: to tell which values it read otherwise."""

    breaks_of_yaml_1_1 = True


class _TooDeep(Exception):
    """A node nested deeper than a manifest may be, at `mark`, its path `path`."""

    def __init__(self, mark: yaml.Mark, path: tuple[Any, ...]) -> None:
        super().__init__(path)
        self.mark, self.path = mark, path


_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Loader.add_implicit_resolver(_INT, _INT_RE, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT, _FLOAT_RE, list("-+0123456789."))


def load_plain(stream: Any) -> Any:
    """YAML with YAML 1.2 core scalar rules (`16:9` is a string), without positions; keys keep their types.

    :raises yaml.YAMLError: not YAML.
    """
    return yaml.load(stream, Loader=_Loader)  # a SafeLoader underneath


if getattr(yaml, "__with_libyaml__", False):
    class _DataLoader(yaml.CSafeLoader):  # type: ignore[misc]
        """`_Loader`'s implicit types over libyaml's parser: for gridrun's own data files only, which hold none
        of the line breaks of YAML 1.1 that libyaml, as PyYAML's reader, breaks lines at."""

        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
else:  # PyYAML built without libyaml
    _DataLoader = _Loader  # type: ignore[misc]


def load_data(stream: Any) -> Any:
    """A data file of gridrun's own, read as `load_plain` reads it, but in C where PyYAML has libyaml: some ten
    times faster, a dozen milliseconds of every command's start-up (the providers' capability data).

    :raises yaml.YAMLError: not YAML.
    """
    return yaml.load(stream, Loader=_DataLoader)


def read_yaml(path: str | Path) -> tuple[Any, Positions]:
    """Read and parse a YAML file, with positions; every failure is a ManifestError naming the file."""
    shown = Path(path)
    return load_yaml(read_text(shown, limit=MAX_BYTES), file=shown)


def load_yaml(text: str, *, file: Path, loader_class: type[_Loader] = _Loader) -> tuple[Any, Positions]:
    """Parse YAML text with YAML 1.2 core scalar rules; return the document and each node's position.

    Positions are 1-based (line, column), keyed by path tuples such as ("matrix", "style", 2); a mapping
    member's position is that of its key. Mapping keys are always strings (the key's text). A key repeated
    in one mapping is an error naming both lines.
    """
    try:
        loader = loader_class(text)
        try:
            node = loader.get_single_node()
            alias_marks = loader.alias_marks
        finally:
            loader.dispose()
    except _TooDeep as exc:
        line, column = _position(exc.mark)
        message, field = _unshown_path(_too_deep(), exc.path, _deep_field)
        raise ManifestError(message, file=file, line=line, column=column, field=field) from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_syntax_error(exc, file) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ManifestError(
            f"invalid YAML: the control character U+{code:04X} is not allowed", file=file, line=line, column=column
        ) from exc
    except yaml.YAMLError as exc:
        message = f"invalid YAML: {exc}"
        if (var := key_held(message)) is not None:
            message = KEY_IN_TEXT.format(where="a line that does not parse", var=var, kind="such lines")
        raise ManifestError(message, file=file) from exc
    if node is None:
        return None, {(): (1, 1)}
    _check_size(node, file)
    builder = _Builder(file, alias_marks)
    data = builder.build(node, ())
    builder.positions[()] = _position(node.start_mark)
    raise_all(builder.errors)
    return data, builder.positions



def read_otherwise_before(text: str, file: Path) -> list[tuple[tuple[Any, ...], str]]:
    """The strings of the YAML `text` that hold a NEL, U+2028 or U+2029 and that gridrun read otherwise before it
    broke lines as YAML 1.2 does (YAML 1.1 folded a NEL in a quoted string to a space, and ended a plain one there),
    each as (path, the first of those characters in it), in the file's order: the requests made of them are not the
    ones made before. [] when the text holds none of them, or the earlier reading refused the file (nothing ran)."""
    if not any(c in text for c in _BREAKS_OF_YAML_1_1):
        return []
    try:
        now, positions = load_yaml(text, file=file)
        before, _ = load_yaml(text, file=file, loader_class=_LoaderOfYaml11Breaks)
    except (ManifestError, ManifestErrors):
        return []
    found: list[tuple[tuple[Any, ...], str]] = []
    stack: list[tuple[tuple[Any, ...], Any, Any]] = [((), now, before)]
    while stack:
        path, value, old = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                missing = not isinstance(old, dict) or key not in old
                if missing and any(c in key for c in _BREAKS_OF_YAML_1_1):
                    found.append((path + (key,), next(c for c in key if c in _BREAKS_OF_YAML_1_1)))
                else:
                    stack.append((path + (key,), child, None if missing else old[key]))
        elif isinstance(value, list):
            olds = old if isinstance(old, list) else []
            for index, child in enumerate(value):
                stack.append((path + (index,), child, olds[index] if index < len(olds) else None))
        elif isinstance(value, str) and value != old and any(c in value for c in _BREAKS_OF_YAML_1_1):
            found.append((path, next(c for c in value if c in _BREAKS_OF_YAML_1_1)))
    return sorted(found, key=lambda item: locate(positions, item[0]))


# A `#` after a space, followed by more text on the line: a comment in YAML, though in a free-text value (a
# prompt's "shot #3", "#no watermark") it was most likely meant as text.
_CUTTING_COMMENT = re.compile(r"[ \t]+(#\S[^\r\n]*)")


def cut_by_comments(text: str, free_text: Callable[[tuple[Any, ...]], bool]
                    ) -> list[tuple[tuple[Any, ...], str, str, Position]]:
    """The plain (unquoted) strings of the YAML `text` at a path `free_text` takes, that a comment follows on
    their last line whose `#` is followed by text without a space (`prompt: shot #3 of the series`): each as (its
    path, the string YAML reads, the comment, the line and column the string starts at), in the file's order. YAML
    ends the string before the comment; the words after it, which the writer most likely meant as part of it, are
    not sent. `# a note`, with a space after the `#`, is taken as the comment it reads as, and `C#` (no space
    before) is text. A string an alias repeats (`prompt: *base`) is the anchor's, written where the anchor is: its
    path is the first in the file's order that `free_text` takes. [] when the text does not parse (the error is
    said elsewhere). One whose comment, string or path holds an API key this process holds is left out: what holds
    it is refused, the key never shown (`plan._keys_in_comments`, `plan._keys_written`)."""
    if "#" not in text:
        return []
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except (yaml.YAMLError, _TooDeep):
        return []
    found: dict[int, tuple[int, tuple[Any, ...], str, str, Position]] = {}
    # Visited in the file's order (an anchor comes before its aliases): each collection once, each string at every
    # path until one `free_text` takes.
    stack: list[tuple[tuple[Any, ...], Any]] = [((), root)]
    seen: set[int] = set()
    while stack:
        path, node = stack.pop()
        if node is None:
            continue
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                children = [(path + (key.value,), value) for key, value in node.value
                            if isinstance(key, yaml.ScalarNode)]
            else:
                children = [(path + (i,), item) for i, item in enumerate(node.value)]
            stack.extend(reversed(children))
        elif (isinstance(node, yaml.ScalarNode) and node.style is None and node.tag == _STR and node.value
              and id(node) not in found and free_text(path)):
            buffer = node.end_mark.buffer
            m = _CUTTING_COMMENT.match(buffer, node.end_mark.pointer) if isinstance(buffer, str) else None
            comment = None if m is None else m[1].rstrip("\0").translate(_GIVE_BACK)
            if comment is not None and key_held(comment + node.value) is None and key_named(path) is None:
                found[id(node)] = (node.end_mark.pointer, path, node.value, comment, _position(node.start_mark))
    return [(path, value, comment, at) for _, path, value, comment, at in sorted(found.values(), key=lambda f: f[0])]


def scalar_spans(text: str) -> list[tuple[int, int]] | None:
    """Where each scalar of the YAML `text` is written, as (start, end) offsets in `text`, mapping keys too; a block
    scalar's (`|`, `>`) from the line after its header, whose comment is a comment. What lies outside them is the
    document's layout, its comments, anchors and tags. None when the text does not parse (the error is said
    elsewhere)."""
    spans: list[tuple[int, int]] = []
    loader = _Loader(text)
    try:
        while loader.check_token():
            token = loader.get_token()
            if isinstance(token, yaml.ScalarToken):
                start, end = token.start_mark.pointer, token.end_mark.pointer
                if token.style in ("|", ">"):
                    found = _LINE_BREAK.search(text, start, end)
                    start = end if found is None else found.end()
                spans.append((start, end))
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return spans


def named_spans(text: str) -> list[tuple[int, int, str]] | None:
    """Where each anchor (`&a`), alias (`*a`) and tag (`!t`) of the YAML `text` is written, as (start, end, what)
    offsets in `text`, what "an anchor", "an alias" or "a tag"; None when the text does not parse."""
    named = {yaml.AnchorToken: "an anchor", yaml.AliasToken: "an alias", yaml.TagToken: "a tag"}
    spans: list[tuple[int, int, str]] = []
    loader = _Loader(text)
    try:
        while loader.check_token():
            token = loader.get_token()
            if type(token) in named:
                spans.append((token.start_mark.pointer, token.end_mark.pointer, named[type(token)]))
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return spans


_LINE_BREAK = re.compile(r"\r\n?|\n")


def line_and_column(text: str, at: int) -> Position:
    """The line and column (from 1) of offset `at` in `text`, its lines broken as YAML 1.2 breaks them."""
    breaks = list(_LINE_BREAK.finditer(text, 0, at))
    return len(breaks) + 1, at - (breaks[-1].end() if breaks else 0) + 1


def double_quoted_source(text: str, path: tuple[Any, ...]) -> str | None:
    """The source text of the string at `path` in the YAML `text` (`"C:\\vids"`, quotes and all) when it is written
    in double quotes and holds a backslash, which YAML reads there as an escape (`\\v` a vertical tab, `\\e` an
    ESC); None otherwise, or when the text does not parse. Read again from the text, on the way to an error only."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except (yaml.YAMLError, _TooDeep):
        return None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value
                         if isinstance(key, yaml.ScalarNode) and key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return None
    if not isinstance(node, yaml.ScalarNode) or node.style != '"':
        return None
    source = text[node.start_mark.index:node.end_mark.index]
    return source if "\\" in source else None


def plain_value_source(text: str, at: Position, key: str) -> str | None:
    """The text written after `key:` where the mapping key `key` is at `at` (its line and column, as `positions`
    has it), when the value is a plain scalar on the key's own line (`budget_usd: 4.1999999999999999  # note`);
    None otherwise (quoted key, value on the next line, an alias). What a number reads as is float's, rounded
    to 17 digits; its text keeps every digit written. Callers check it reads back to the value loaded."""
    line, column = at
    start = 0
    for _ in range(line - 1):
        found = LINE_BREAK.search(text, start)
        if found is None:
            return None
        start = found.end()
    end = LINE_BREAK.search(text, start)
    here = text[start:end.start() if end else len(text)][column - 1:]
    m = re.match(rf"{re.escape(key)}[ \t]*:[ \t]+([^\s#,\]}}]+)[ \t]*(?:#.*|[,\]}}].*)?$", here)
    return None if m is None else m[1]


def dotted(path: Iterable[Any]) -> str:
    """A path tuple as a field name: ("matrix", "include", 2, "style") -> "matrix.include[2].style"."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def locate(positions: Mapping[tuple[Any, ...], Position], path: tuple[Any, ...]) -> Position:
    """Line and column of `path` in `positions`, or of its nearest ancestor there; (1, 1) if none is."""
    for end in range(len(path), -1, -1):
        found = positions.get(tuple(path[:end]))
        if found is not None:
            return found
    return (1, 1)


def raise_all(errors: list[ManifestError]) -> None:
    """Raise the one error, or all of them as `ManifestErrors`; nothing when there are none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ManifestErrors(errors)



# --- reading text and YAML -------------------------------------------------------------------


def read_text(path: Path, *, limit: int | None = None) -> str:
    """A UTF-8 text file (a BOM dropped); every failure a ManifestError naming the file, and the line and
    column of a byte that is not UTF-8. A manifest longer than `limit` bytes is refused unread, and one that is no
    file (`check_a_file`) unopened."""
    check_a_file(path)
    try:
        with path.open("rb") as f:
            raw = f.read() if limit is None else f.read(limit + 1)
            if limit is not None and len(raw) > limit:
                size = os.fstat(f.fileno()).st_size
                raise ManifestError(
                    f"the file is {f'{size:,} bytes' if size > limit else f'more than {limit:,} bytes'}, and a "
                    f"manifest is at most {limit:,}: put long lists of values in a data file "
                    "(matrix: {prompt: {file: prompts.txt}})",
                    file=path,
                )
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from (exc if _other_os_error(exc) else None)
    head = raw[:UTF16_SNIFF]  # the file's first bytes, as a data file's are read (`datafiles._utf16`)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _not_utf8(path, raw[exc.start], line, column, utf16(head)) from None
    # a NUL is no YAML character: in a file that reads as UTF-16 without a byte order mark (ASCII letters each
    # followed or led by a NUL), said as such rather than as a control character the editor does not show
    nul = text.find("\x00")
    if nul >= 0 and (encoding := utf16(head)) is not None:
        line = text.count("\n", 0, nul) + 1
        raise ManifestError(f"a NUL byte: {_utf16_said(encoding)}", file=path, line=line,
                            column=nul - (text.rfind("\n", 0, nul) + 1) + 1)
    return text


UTF16_SNIFF = 512
"""The first bytes of a file `utf16` reads."""


def utf16(head: bytes) -> str | None:
    """'UTF-16LE' or 'UTF-16BE' when `head`, a file's first bytes, reads as text in that encoding (a BOM, or a NUL
    every other byte and nowhere else, as ASCII letters are written in it): a file saved as "Unicode" by Notepad,
    or by Windows PowerShell's `>` and `Out-File`; 'UTF-32LE' or 'UTF-32BE' alike (PowerShell's `Out-File
    -Encoding utf32`, `iconv -t UTF-32`), looked for first, as its BOM `ff fe 00 00` starts with UTF-16LE's and its
    ASCII letters have NULs every other byte too; else None."""
    if head.startswith(b"\xff\xfe\x00\x00"):
        return "UTF-32LE"
    if head.startswith(b"\x00\x00\xfe\xff"):
        return "UTF-32BE"
    if head.startswith(b"\xff\xfe"):
        return "UTF-16LE"
    if head.startswith(b"\xfe\xff"):
        return "UTF-16BE"
    wide = head[:len(head) - len(head) % 4]
    if len(wide) >= 8:
        # three NULs in four, the letter's byte first (LE) or last (BE): the middle two are NUL below U+0100
        lanes = [wide[i::4] for i in range(4)]
        if 0 not in lanes[0] and lanes[3].count(0) == len(lanes[3]) and _mostly_nul(lanes[1], lanes[2]):
            return "UTF-32LE"
        if 0 not in lanes[3] and lanes[0].count(0) == len(lanes[0]) and _mostly_nul(lanes[1], lanes[2]):
            return "UTF-32BE"
    head = head[:len(head) - len(head) % 2]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) * 2 >= len(odd) and 0 not in even:
        return "UTF-16LE"
    if even.count(0) * 2 >= len(even) and 0 not in odd:
        return "UTF-16BE"
    return None


def _mostly_nul(*lanes: bytes) -> bool:
    return all(lane.count(0) * 2 >= len(lane) for lane in lanes)


def _utf16_said(encoding: str) -> str:
    """How to convert a file in `encoding` (`utf16`'s answer) to UTF-8."""
    return f"this looks like {encoding[:6]} text: save the file as UTF-8 (iconv -f {encoding} -t UTF-8)"


READ_CHUNK = 1 << 20
"""The bytes `text_chunks` reads at a time."""


def text_chunks(path: Path) -> Iterator[str]:
    """The text of a UTF-8 file (a BOM dropped), a piece at a time, as `read_text` would read it whole: a file of
    gigabytes takes no more memory than a piece, and a reader may stop before its end. Every failure is the
    ManifestError `read_text` raises, a byte that is not UTF-8 at the same line and column."""
    try:
        f = path.open("rb")
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from (exc if _other_os_error(exc) else None)
    with f:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        start = True
        lines = 0  # LFs before the bytes being decoded
        line_start = 0  # the offset where the line being read began
        offset = 0  # the offset of the next byte read (after the BOM)
        while True:
            try:
                raw = f.read(READ_CHUNK)
            except OSError as exc:
                raise _unreadable(path, exc) from (exc if _other_os_error(exc) else None)
            end = not raw
            if start:
                while len(raw) < 3 and raw and b"\xef\xbb\xbf".startswith(raw):  # a BOM cut by a short read
                    more = f.read(3 - len(raw))
                    if not more:
                        break
                    raw += more
                raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
                start = False
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(raw, final=end)
            except UnicodeDecodeError as exc:
                seen = pending + raw  # the bytes the error counts from: those held back from the last piece first
                at = offset - len(pending) + exc.start
                before = seen[:exc.start]
                newline = before.rfind(b"\n")
                line = lines + before.count(b"\n") + 1
                column = at - (offset - len(pending) + newline + 1 if newline >= 0 else line_start) + 1
                raise _not_utf8(path, seen[exc.start], line, column) from None
            newline = raw.rfind(b"\n")
            if newline >= 0:
                lines += raw.count(b"\n")
                line_start = offset + newline + 1
            offset += len(raw)
            if text:
                yield text
            if end:
                return


# The names of a process's open files (its standard input, `<(...)`), each a link to whatever the descriptor holds.
_DESCRIPTOR = re.compile(r"/dev/(std(in|out|err)|fd/[0-9]+)|/proc/[^/]+/fd/[0-9]+")


def check_a_file(path: str | os.PathLike[str]) -> None:
    """Refuse a manifest that is not a file of its own: standard input (`/dev/stdin`, `/dev/fd/0`, even one
    redirected from a file), a pipe (`<(...)`, a FIFO), a device. A manifest's state and outputs go in the folder
    beside it: under `/dev/` or `/proc/<pid>/fd/` they would be lost with the process or the machine, and the next
    run, finding no state, would send and pay for every job again. Checked before the file is opened, which would
    wait for a FIFO's writer; a path that cannot be looked at is left to the opening, which says why.

    :raises ManifestError: it is no such file.
    """
    try:
        given = os.fspath(path)
        named = _DESCRIPTOR.fullmatch(os.path.abspath(given)) is not None
        mode = None if named else os.stat(given).st_mode
    except (OSError, TypeError, ValueError):
        return
    if mode is not None and (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return
    raise ManifestError("not a file but standard input, a pipe or a device: gridrun reads a manifest from a file, "
                        "and keeps its state and outputs beside it; save it to one (m.yaml) and name that",
                        file=Path(given))


def _unreadable(path: Path, exc: BaseException) -> ManifestError:
    """The error of a file that cannot be opened or read."""
    if isinstance(exc, FileNotFoundError):
        if os.fspath(path) == "-":
            return ManifestError("no such file: gridrun reads a manifest from a file, not from standard input; save "
                                 "it to one (m.yaml) and name that", file=path)
        return ManifestError(f"no such file{_meant_file(path)}", file=path)
    if isinstance(exc, IsADirectoryError):
        return ManifestError("is a directory, not a file", file=path)
    if isinstance(exc, PermissionError):
        return ManifestError("cannot read the file: permission denied", file=path)
    if isinstance(exc, OSError):
        return ManifestError(f"cannot read the file: {exc.strerror or exc}", file=path)
    return ManifestError(f"cannot read the file: {why_unusable(exc)}", file=shown(path))  # a NUL byte in the name


def _meant_file(path: Path) -> str:
    """"; did you mean demo.yaml?" for a file not there whose folder holds one it may have meant: the name with
    `.yaml` or `.yml` added (`gridrun plan demo`), or one written alike (`dmeo.yaml`, `Demo.yaml`); "" when none
    is (or the folder cannot be listed). Named as the missing one was, in the same folder. A name there that
    reads as the one written but is other text (`textforms.alike`) is said so, as an input image's is."""
    import difflib
    import itertools

    from runner.terminal import visible

    folder = path.parent
    try:
        with os.scandir(folder) as entries:  # at most 10,000 names looked at: an answer, not a wait
            names = [e.name for e in itertools.islice(entries, 10_000) if e.is_file()]
    except (OSError, ValueError):
        return ""
    if not names:
        return ""
    from runner.textforms import alike, escaped, unlike

    # the name written, but with its letters composed or not (names unpacked from a macOS archive are decomposed),
    # or an invisible character: it prints as the name written, so both are escaped
    twin = next((n for n in names if n != path.name and alike(n) == alike(path.name)), None)
    if twin is not None:
        return (f"; '{escaped(twin)}' is there, the same name as '{escaped(path.name)}' but for "
                f"{unlike(twin, path.name)}: rename the file or write the name so")
    found = next((f"{path.name}{ext}" for ext in (".yaml", ".yml") if f"{path.name}{ext}" in names), None)
    if found is None:
        yaml_names = (".yaml", ".yml")  # one kind of file, either ending
        suffix = path.suffix.lower()
        kind = yaml_names if suffix in yaml_names else (suffix,)
        alike = [n for n in names if Path(n).suffix.lower() in kind] if suffix else names
        folded = {n.casefold(): n for n in alike}
        found = folded.get(path.name.casefold())
        if found is None:
            close = difflib.get_close_matches(path.name, alike, n=1, cutoff=0.8)
            found = close[0] if close else None
    if found is None:
        return ""
    return f"; did you mean {visible(os.fspath(path.with_name(found)))}?"


def _other_os_error(exc: BaseException) -> bool:
    """Whether `exc` is told with its cause (an OSError other than a missing, folder or forbidden file)."""
    return isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError))


def _not_utf8(path: Path, byte: int, line: int, column: int, encoding: str | None = None) -> ManifestError:
    """`encoding`: 'UTF-16LE', 'UTF-32BE' ... when the file reads as such (`utf16`), said with how to convert it."""
    said = _utf16_said(encoding) if encoding is not None else "save the file as UTF-8"
    return ManifestError(f"not UTF-8 text: byte 0x{byte:02x} cannot be decoded; {said}",
                         file=path, line=line, column=column)


def _yaml_syntax_error(exc: yaml.MarkedYAMLError, file: Path) -> ManifestError:
    if (lacking := _missing_colon(exc)) is not None:
        (line, column), message = lacking
        if (var := key_held(message)) is not None:  # the line quoted, and as it would read fixed
            message = KEY_IN_TEXT.format(where="a line that does not parse", var=var, kind="such lines")
        return ManifestError(message, file=file, line=line, column=column)
    mark = exc.problem_mark or exc.context_mark
    buffer = getattr(mark, "buffer", None)
    if (exc.problem == "could not find expected ':'" and exc.context_mark is not None and isinstance(buffer, str)
            and not buffer[mark.pointer:].rstrip("\0").strip()):
        mark = exc.context_mark  # the key went on to the file's end: the line it began on, not the one after the end
    problem = exc.problem or exc.context or "cannot be parsed"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem:
        where = f" (line {exc.context_mark.line + 1})" if exc.context_mark is not None else ""
        message = f"invalid YAML: {exc.context}{where}, {exc.problem}"
    if "'\\t'" in problem:
        message += _tab_hint(mark)
    elif problem == "mapping values are not allowed here" or problem.startswith("expected <block end>"):
        message += _layout_hint(mark)
    message += _template_hint(mark, exc.context_mark)
    if (var := key_held(message)) is not None:
        alias = problem.startswith("found undefined alias")
        message = KEY_IN_TEXT.format(where="an alias" if alias else "a line that does not parse", var=var,
                                     kind="aliases" if alias else "such lines")
    line, column = _position(mark) if mark is not None else (0, 0)
    return ManifestError(message, file=file, line=line, column=column)


# What is said of the manifest's text where an API key this process holds is in it outside any value: a comment, an
# anchor, an alias or a tag (`where`, `kind` the text kept: "comments"), named by its variable (`var`), never shown.
KEY_IN_TEXT = ("{where} holds the value of {var} (an API key, not shown): a key goes in the environment, never the "
               "manifest, whose text, {kind} too, the state and .runs/ beside the videos keep; take it out")


# What is said of a mapping's key (the name of a field, which is then not shown) that holds an API key this process
# holds, named by its variable, the mapping named as the field.
KEY_AS_NAME = ("a key of this mapping holds the value of {var} (an API key, not shown): a key goes in the environment, "
               "never the manifest, whose text the state and .runs/ beside the videos keep; take it out")


def key_held(text: Any, keys: Mapping[str, str] | None = None) -> str | None:
    """The variable holding the API key `text` holds, of `keys` (each key with its variable) or else of those this
    process holds (`bugs.key_values`); None where it holds none, or is not a string. A caller that looks at many
    texts passes the keys it read once."""
    if not isinstance(text, str):
        return None
    if keys is None:
        from runner.bugs import key_values

        keys = key_values()
    return next((name for key, name in keys.items() if key in text), None)


def key_named(path: tuple[Any, ...]) -> tuple[int, str] | None:
    """Of a field's path, the index of its first part, a mapping's key, that holds an API key this process holds,
    with the variable holding that key; None where none does. Such a field's name is never shown: an error of it is
    said of the mapping (`KEY_AS_NAME`)."""
    return next(((i, var) for i, part in enumerate(path)
                 if isinstance(part, str) and (var := key_held(part)) is not None), None)


def _unshown_path(message: str, path: tuple[Any, ...], shown: Callable[[tuple[Any, ...]], str] = dotted
                  ) -> tuple[str, str]:
    """An error's message and field, of a node at `path`: as they are, or, where a mapping's key on the way to it
    holds an API key, `KEY_AS_NAME` of that mapping."""
    if (named := key_named(path)) is None:
        return message, shown(path)
    i, var = named
    return KEY_AS_NAME.format(var=var), dotted(path[:i])


def _missing_colon(exc: yaml.MarkedYAMLError) -> tuple[Position, str] | None:
    """Where a key was written without its `:` (`duration 5`), and what to write: PyYAML reads such a line as text
    that goes on at the next line, and fails there ("could not find expected ':'" after the simple key it began,
    "mapping values are not allowed here" at the next key's colon, "expected <block end>" at the next key). The line
    blamed is the one the simple key began on, or the nearest line with text above the mark, indented as much or
    more; it is blamed only where it holds plain text and no `key:`, and where writing the colon after its first
    word takes that error away. None: not so."""
    problem, mark = exc.problem or "", exc.problem_mark
    buffer = getattr(mark, "buffer", None)
    if mark is None or not isinstance(buffer, str):
        return None
    text = buffer.rstrip("\0")
    lines = LINE_BREAK.split(text)
    if problem == "could not find expected ':'" and exc.context_mark is not None:
        number = exc.context_mark.line
    elif problem == "mapping values are not allowed here" or problem.startswith("expected <block end>"):
        if mark.line >= len(lines):
            return None
        indent = _key_column(lines[mark.line])
        number = next((n for n in range(mark.line - 1, -1, -1)
                       if lines[n].strip() and not lines[n].lstrip().startswith("#")), -1)
        if number < 0 or _key_column(lines[number]) < indent:
            return None
    else:
        return None
    line = lines[number] if number < len(lines) else ""
    column = len(line) - len(line.lstrip(" "))
    content = _uncommented(line[column:]).rstrip()
    if not content or content[0] in "-?:,[]{}#&*!|>%@`" or _first_colon(content, 0) is not None:
        return None
    if content[0] in "'\"":  # a quoted key, `"quality" 540p`: its value after its closing quote
        end = content.find(content[0], 1)
        if end < 0 or content[end + 1:end + 2] not in ("", " "):
            return None
    def reads_past(fixed: str) -> bool:
        """Whether, with the line written `fixed`, the file reads past that line (or through)."""
        try:
            for _ in yaml.parse("\n".join((*lines[:number], line[:column] + fixed, *lines[number + 1:])),
                                Loader=yaml.SafeLoader):
                pass
        except yaml.MarkedYAMLError as again:
            return again.problem_mark is not None and again.problem_mark.line > max(number, mark.line)
        except yaml.YAMLError:
            return False
        return True

    # below a `- ` item of text at its indentation (`- anime`), the line is an item that lost its dash: `clay:`
    # would make it a key beside the list's own
    above = next((lines[n] for n in range(number - 1, -1, -1)
                  if lines[n].strip() and not lines[n].lstrip().startswith("#")), "")
    if (len(above) - len(above.lstrip(" ")) == column and above[column:column + 2] in ("- ", "-")
            and _first_colon(above, _key_column(above)) is None and reads_past(f"- {content}")):
        return (number + 1, column + 1), (f"invalid YAML: '{content}' has no '- ' before it, as the list item above it "
                                          f"has (write '- {content}')")
    if content[0] in "'\"":
        cut = content.find(content[0], 1) + 1
    else:
        cut = content.find(" ") if " " in content else len(content)
    key, value = content[:cut], content[cut:]
    fixed = f"{key}: {value.strip()}" if value.strip() else f"{key}:"
    if not reads_past(fixed):
        return None
    return (number + 1, column + 1), f"invalid YAML: '{content}' has no ':' after its key (write '{fixed}')"


def _uncommented(text: str) -> str:
    """`text` up to its comment (a `#` after a space, outside quotes)."""
    quote = None
    for i, c in enumerate(text):
        if quote is not None:
            quote = None if c == quote else quote
        elif c in "\"'" and (i == 0 or text[i - 1] in " \t"):
            quote = c
        elif c == "#" and i > 0 and text[i - 1] in " \t":
            return text[:i]
    return text


def _tab_hint(mark: yaml.Mark | None) -> str:
    """What to do about the tab PyYAML refused at `mark`: in the indentation, indent with spaces; after text on
    its line (after a value, before a comment, after `key:` or a `,`), where YAML 1.2 allows a tab but PyYAML,
    which reads manifests, does not, replace it with a space (the indentation is not at fault)."""
    buffer = getattr(mark, "buffer", None)
    if mark is not None and isinstance(buffer, str) and buffer[mark.pointer : mark.pointer + 1] == "\t":
        start = max(buffer.rfind("\n", 0, mark.pointer), buffer.rfind("\r", 0, mark.pointer)) + 1
        if buffer[start : mark.pointer].strip(" \t"):
            return ("; this tab is not indentation but follows text on its line, where the YAML reader gridrun uses "
                    "(PyYAML) takes no tab: replace it with a space, or quote the text that holds it")
    return "; indent with spaces, not tabs"


LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""A line break as YAML 1.2 counts one, and as Jinja and the data files' readers do: CRLF, CR or LF."""


def _layout_hint(mark: yaml.Mark | None) -> str:
    """What to change where PyYAML found a `key:` it cannot place ("mapping values are not allowed here", "expected
    <block end>"), said in the file's own terms: a `: ` inside an unquoted value (`prompt: a fox, style: anime`)
    starts a mapping, so the value is to be quoted; a key indented otherwise than the key above it (by a space
    more or less) is out of its mapping, so the two are to line up. "" when the line shows neither."""
    buffer = getattr(mark, "buffer", None)
    if mark is None or not isinstance(buffer, str):
        return ""
    lines = LINE_BREAK.split(buffer[: mark.pointer])
    here = lines[-1] + LINE_BREAK.split(buffer[mark.pointer :], maxsplit=1)[0]
    at = len(lines[-1])  # the mark's column in `here`
    indent = _key_column(here)
    colon = _first_colon(here, indent)
    if colon is not None and colon < at and buffer[mark.pointer : mark.pointer + 1] == ":":
        key, value = here[indent:colon], here[colon + 1 :].strip()
        example = f'{key}: "{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        shown = f" ({example})" if len(example) <= 80 and "#" not in value else ""
        return f"; a ': ' inside an unquoted value starts a mapping: quote the value{shown}"
    if at > indent and buffer[mark.pointer : mark.pointer + 1] != ":":
        return ""  # not at the line's key, nor at its colon: something else is wrong on this line
    if at - indent > _MAX_KEY and buffer[mark.pointer : mark.pointer + 1] == ":":
        return (f"; the key before this ':' is {at - indent:,} characters long, and YAML reads keys of at most "
                f"{_MAX_KEY:,} characters: shorten it (or quote the line's text, if it is a value and not a key)")
    if here.lstrip(" ")[:2] in ("- ", "-"):
        return ""  # a list item where a key was expected: not a matter of spaces
    for back, line in enumerate(reversed(lines[:-1]), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        above = _key_column(line)
        if above == indent:
            return ""
        number = mark.line + 1
        spaces = f"{indent} space" + ("" if indent == 1 else "s")
        return (f"; line {number} is indented {spaces}, line {number - back} above it {above}: keys of one mapping "
                "line up, each indented by the same spaces")
    return ""


# The longest key PyYAML reads on one line (a "simple key", written without `?`): past it, the `:` after the key is
# "not allowed here".
_MAX_KEY = 1024


def _key_column(line: str) -> int:
    """The column where `line`'s key (or value) starts: past its indentation and any `- ` of a list item."""
    column = len(line) - len(line.lstrip(" "))
    while line.startswith("- ", column) or line[column:] == "-":
        column += 2
        column += len(line[column:]) - len(line[column:].lstrip(" "))
    return column


def _first_colon(line: str, start: int) -> int | None:
    """The column of the first `:` that ends a plain key on `line` from `start` (followed by a space, a tab or the
    line's end), or None: a quoted key is stepped over whole."""
    i = start
    if line[i : i + 1] in ('"', "'"):
        end = line.find(line[i], i + 1)
        i = end + 1 if end > 0 else len(line)
    while i < len(line):
        if line[i] == ":" and (i + 1 == len(line) or line[i + 1] in " \t"):
            return i
        if line[i] == "#" and i > 0 and line[i - 1] in " \t":
            return None
        i += 1
    return None


def _template_hint(*marks: yaml.Mark | None) -> str:
    """A hint to quote the template when one of `marks` is at or after an unquoted value on its line that opens
    with `{{` or `{%`: YAML reads `{{ x }}` as a mapping (or fails on what follows). A template inside a quoted
    string, or later on the line than the error, is no cause of it and gets no hint."""
    for mark in marks:
        buffer = getattr(mark, "buffer", None)
        if mark is None or not isinstance(buffer, str):
            continue
        start = buffer.rfind("\n", 0, mark.pointer) + 1
        end = buffer.find("\n", mark.pointer)
        opens = _unquoted_template(buffer[start : end if end >= 0 else len(buffer)])
        if opens is not None and opens <= mark.pointer - start:
            return '; a value that begins with a template must be quoted: prompt: "{{ scene }}, at dusk"'
    return ""


def _unquoted_template(line: str) -> int | None:
    """The 0-based column where a value on `line` opens with `{{` or `{%` unquoted, or None: quoted strings,
    plain text and comments are stepped over as YAML reads them (`,` `[` `{` are markup only in a flow list or
    mapping)."""
    i, depth, at_value = 0, 0, True
    while i < len(line):
        c = line[i]
        spaced = i + 1 == len(line) or line[i + 1] in " \t"
        if c in " \t":
            pass
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return None
        elif at_value and line.startswith(("{{", "{%"), i):
            return i
        elif at_value and c in "[{":
            depth += 1
        elif at_value and c in "\"'":
            i, at_value = _quoted_end(line, i), False
            continue
        elif at_value and c in "-?" and spaced:
            pass
        elif c == ":" and spaced or depth and c == ",":
            at_value = True
        elif depth and c in "]}":
            depth, at_value = depth - 1, False
        else:
            at_value = False
        i += 1
    return None


def _quoted_end(line: str, i: int) -> int:
    """The index after the quoted string opening at `line[i]` (the line's end if it goes on)."""
    quote, i = line[i], i + 1
    escaped = "\\" if quote == '"' else "''"  # a backslash escapes in "...", a doubled quote in '...'
    while i < len(line):
        if line.startswith(escaped, i):
            i += 2
        elif line[i] == quote:
            return i + 1
        else:
            i += 1
    return i


def _position(mark: yaml.Mark) -> Position:
    return (mark.line + 1, mark.column + 1)


class _Builder:
    """Turns a composed YAML node tree into plain data, recording positions and collecting errors."""

    def __init__(self, file: Path, alias_marks: Mapping[tuple[int, int], yaml.Mark] | None = None) -> None:
        self.file = file
        self.alias_marks = alias_marks or {}
        self.positions: Positions = {}
        self.errors: list[ManifestError] = []

    def _error(self, message: str, mark: yaml.Mark, path: tuple[Any, ...]) -> None:
        if (named := key_named(path)) is not None:
            # a key on the way to the node holds an API key: said of its mapping, at that key, once whatever is
            # wrong below it
            i, var = named
            line, column = self.positions.get(path[:i + 1]) or _position(mark)
            error = ManifestError(KEY_AS_NAME.format(var=var), file=self.file, line=line, column=column,
                                  field=dotted(path[:i]))
            if all(str(e) != str(error) for e in self.errors):
                self.errors.append(error)
            return
        if (var := key_held(message)) is not None:  # a tag (`!lmnfl_...`), or a value a tag made unreadable
            where = "a tag" if message.startswith("unsupported YAML tag") else "a value"
            message = KEY_IN_TEXT.format(where=where, var=var, kind="tags" if where == "a tag" else "values")
        line, column = _position(mark)
        self.errors.append(ManifestError(message, file=self.file, line=line, column=column, field=dotted(path)))

    def build(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node, path)
        assert isinstance(node, yaml.MappingNode)
        return self._mapping(node, path)

    def _sequence(self, node: yaml.SequenceNode, path: tuple[Any, ...]) -> list[Any]:
        if node.tag != _SEQ:
            self._error(f"unsupported YAML tag {node.tag}", node.start_mark, path)
        out = []
        for index, child in enumerate(node.value):
            child_path = path + (index,)
            self.positions[child_path] = _position(self.alias_marks.get((id(node), index), child.start_mark))
            out.append(self.build(child, child_path))
        return out

    def _mapping(self, node: yaml.MappingNode, path: tuple[Any, ...]) -> dict[str, Any]:
        if node.tag != _MAP:
            self._error(f"unsupported YAML tag {node.tag}", node.start_mark, path)
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merge_line = 0
        # Keys written out win over merged ones (<<), which take the place of their << in the key order.
        written = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode) and not _is_merge(k)}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._error("a mapping key must be a plain value, not a list or a mapping"
                            + _template_hint(key_node.start_mark), key_node.start_mark, path)
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if _is_merge(key_node):
                if merge_line:  # a second << would be silently outweighed by the first: refused like any key
                    self._error(
                        f"key '<<' is repeated in this mapping: first at line {merge_line}, again at line {line}; "
                        "merge several mappings with one key: <<: [*first, *second]",
                        key_node.start_mark,
                        path + ("<<",),
                    )
                    continue
                merge_line = line
                self._merge(out, written, value_node, path)
                continue
            if key in first_line:
                self._error(
                    f"key '{key}' is repeated in this mapping: first at line {first_line[key]}, again at line {line}; "
                    "keep one",
                    key_node.start_mark,
                    path + (key,),
                )
                continue
            first_line[key] = line
            child_path = path + (key,)
            self.positions[child_path] = _position(key_node.start_mark)
            out[key] = self.build(value_node, child_path)
        return out

    def _merge(self, out: dict[str, Any], written: set[str], node: yaml.Node, path: tuple[Any, ...]) -> None:
        """`<<: *anchor` (or a list of them): the keys of those mappings that are not `written` out or already
        merged, with the positions of their anchors (a merge key, as YAML 1.1 has it and as configuration
        files use it)."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:  # an earlier mapping's key wins over a later one's
            if not isinstance(source, yaml.MappingNode):
                self._error("a merge key (<<) takes a mapping or a list of mappings, such as *defaults",
                            source.start_mark, path + ("<<",))
                continue
            sub = _Builder(self.file, self.alias_marks)
            merged = sub._mapping(source, path)
            self.errors.extend(sub.errors)
            under: dict[Any, list[tuple[tuple[Any, ...], Position]]] = {}  # key -> the positions in its value
            for p, at in sub.positions.items():
                under.setdefault(p[len(path)], []).append((p, at))
            for key, value in merged.items():
                if key in out or key in written:
                    continue
                out[key] = value
                self.positions.update(under.get(key, ()))

    def _scalar(self, node: yaml.ScalarNode, path: tuple[Any, ...]) -> Any:
        if node.style == "|":
            buffer = getattr(node.start_mark, "buffer", None)
            line, m = node.start_mark.line, None
            if isinstance(buffer, str):
                indicator, breaks = _block_indicator(buffer, node.start_mark.pointer)
                line += breaks
                m = _BLOCK_INDENT.match(buffer, indicator)
            self.positions[path + (LITERAL_BLOCK,)] = (line + 2, len(m[1]) + 1 if m else 1)
        elif node.style == ">":
            buffer = getattr(node.start_mark, "buffer", None)
            line = node.start_mark.line
            if isinstance(buffer, str):
                line += _block_indicator(buffer, node.start_mark.pointer, ">")[1]
            self.positions[path + (FOLDED_BLOCK,)] = (line + 2, max(node.end_mark.line, line + 2))
        try:
            return _scalar_value(node.tag, node.value)
        except ValueError as exc:
            self._error(str(exc), node.start_mark, path)
            return node.value


def _block_indicator(buffer: str, at: int, style: str = "|") -> tuple[int, int]:
    """Where the `|` (or `>`, `style`) of a block scalar starting at `at` is, and how many line breaks come before
    it: a scalar's start is at its tag or anchor when it has one (`a: !!str` or `a: &name`), which may be on the
    key's line with the `|` on a later one."""
    breaks, i, end = 0, at, len(buffer)
    while i < end and buffer[i] != style:
        ch = buffer[i]
        if ch in "!&":  # a tag or an anchor: up to the next space or line break
            while i < end and buffer[i] not in " \t\r\n":
                i += 1
        elif ch == "#":  # a comment: up to the line's end
            while i < end and buffer[i] not in "\r\n":
                i += 1
        elif ch == "\r" or ch == "\n":
            breaks += 1
            i += 2 if buffer.startswith("\r\n", i) else 1
        elif ch in " \t":
            i += 1
        else:  # not where a block scalar's properties are: keep the scalar's own start
            return at, 0
    return (i, breaks) if i < end else (at, 0)


def _is_merge(key: yaml.ScalarNode) -> bool:
    return key.value == "<<" and key.style is None  # a quoted '<<' is a key like any other


def _too_deep() -> str:
    return f"nested more than {_MAX_DEPTH} levels deep; a manifest needs a handful"


def _deep_field(path: tuple[Any, ...]) -> str:
    """The field of a node nested too deeply, short enough to read: its path's start and end, with its depth
    ("vars.deep[0]…[0] (100 levels)"), where the whole path would write a hundred parts."""
    if len(path) <= 6:
        return dotted(path)
    return f"{dotted(path[:3])}…{dotted(path[-1:])} ({len(path):,} levels)"


def _check_size(root: yaml.Node, file: Path) -> None:
    """Refuse recursive aliases, and aliases that would expand the document beyond reason (in values, or in the
    text of its strings: each string an alias repeats is read, and its templates looked for, once a place) or
    nest it deeper than `_MAX_DEPTH` (aliases of aliases), before building it."""
    sizes: dict[int, int] = {}
    chars: dict[int, int] = {}  # the characters of the strings each one holds, its keys' included
    depths: dict[int, int] = {}  # how many levels of lists and mappings each one holds, itself included
    active: set[int] = set()

    def size(node: yaml.Node, level: int) -> tuple[int, int]:
        if isinstance(node, yaml.ScalarNode):
            return 1, len(node.value)
        known = sizes.get(id(node))
        if known is not None and level + depths[id(node)] <= _MAX_DEPTH + 1:
            return known, chars[id(node)]  # else met again deeper down, by an alias: walked again to find where
        if id(node) in active:
            line, column = _position(node.start_mark)
            raise ManifestError("an alias refers to a node that contains it", file=file, line=line, column=column)
        if level > _MAX_DEPTH:
            raise _TooDeep(node.start_mark, ())
        active.add(id(node))
        total, text, deepest = 1, 0, 0
        pairs = enumerate(node.value) if isinstance(node, yaml.SequenceNode) else (
            (k.value if isinstance(k, yaml.ScalarNode) else None, v) for k, v in node.value)
        for part, child in pairs:
            try:
                values, characters = size(child, level + 1)
            except _TooDeep as exc:
                exc.path = (part, *exc.path)
                raise
            total, text = total + values, text + characters
            deepest = max(deepest, depths.get(id(child), 0))
        if isinstance(node, yaml.MappingNode):
            for key, _ in node.value:
                values, characters = size(key, level + 1)
                total, text = total + values, text + characters
        active.discard(id(node))
        sizes[id(node)] = total
        chars[id(node)] = text
        depths[id(node)] = deepest + 1
        return total, text

    try:
        total, text = size(root, 1)
    except _TooDeep as exc:
        line, column = _position(exc.mark)
        message, field = _unshown_path(_too_deep() + " (through aliases)", tuple(p for p in exc.path if p is not None),
                                       _deep_field)
        raise ManifestError(message, file=file, line=line, column=column, field=field) from None
    for count, cap, measure, what in ((total, _MAX_NODES, sizes, "values"),
                                      (text, _MAX_CHARS, chars, "characters of text")):
        if count > cap:
            node, path = _crossing(root, measure, cap)
            line, column = _position(node.start_mark)
            shape = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
            alone = f": this {shape} alone to {measure[id(node)]:,}"
            message, field = _unshown_path(
                f"the document expands to more than {cap:,} {what}{alone if path else ''} (an alias repeated too "
                "often?)", path, _deep_field)
            raise ManifestError(message, file=file, line=line, column=column, field=field)


def _crossing(root: yaml.Node, sizes: Mapping[int, int], cap: int
              ) -> tuple[yaml.Node, tuple[Any, ...]]:
    """The deepest list or mapping that alone expands past `cap` (`sizes`, by node: its values, or its
    characters), and its path: the one whose aliases repeat too often. The root when no part of it does alone."""
    node, path = root, ()
    while True:
        pairs = enumerate(node.value) if isinstance(node, yaml.SequenceNode) else (
            (k.value if isinstance(k, yaml.ScalarNode) else None, v) for k, v in node.value)
        for part, child in pairs:
            if sizes.get(id(child), 1) > cap:
                node, path = child, path if part is None else (*path, part)
                break
        else:
            return node, path


def _scalar_value(tag: str, text: str) -> Any:
    if tag == _STR:
        return text
    if tag == _NULL:
        if text in ("", "~", "null", "Null", "NULL"):
            return None
        raise ValueError(f"{text!r} is not a YAML null")
    if tag == _BOOL:
        if text in ("true", "True", "TRUE"):
            return True
        if text in ("false", "False", "FALSE"):
            return False
        raise ValueError(f"{text!r} is not a YAML 1.2 boolean (true or false)")
    if tag == _INT:
        if not _INT_RE.match(text):
            raise ValueError(f"{text!r} is not a YAML 1.2 integer")
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        digits = len(text.lstrip("+-"))
        if digits > (most := sys.get_int_max_str_digits()) > 0:
            raise ValueError(long_number(digits, most))
        return int(text)
    if tag == _FLOAT:
        if not _FLOAT_RE.match(text):
            raise ValueError(f"{text!r} is not a YAML 1.2 number")
        lowered = text.lower()
        if lowered.endswith(".inf"):
            return float("-inf") if lowered.startswith("-") else float("inf")
        if lowered == ".nan":
            return float("nan")
        return float(text)
    raise ValueError(f"unsupported YAML tag {tag}; gridrun reads plain YAML 1.2 values only")


def long_number(digits: int, most: int) -> str:
    """Why a whole number of `digits` decimal digits is refused, Python reading at most `most`
    (`sys.get_int_max_str_digits`: a number of a million digits takes seconds to read), in a manifest's terms."""
    return (f"a number of {digits:,} digits, and gridrun reads numbers of at most {most:,} digits; quote it to make "
            "it text")


def kind(value: Any) -> str:
    """A value's type in words: "a list", "a mapping", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__
