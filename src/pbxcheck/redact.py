"""Secrets never leave the process: every text bound for a report or a terminal goes through here.

Whole-value replacement is not enough: pytest's assertion rewriting and truncated locals print
``'senha': '<its first 13 characters>...'``, and a "wrong" token made by changing one character of
the real one is 31 of its 32 characters. So :class:`Redactor` replaces every run of ``MIN_FRAGMENT``
(6) or more characters that is a substring of a secret, and :func:`scan_for_leaks` /
:func:`scan_text` look for exactly that in files and captured streams at the end of a run.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AnyStr

REDACTED = "[redacted]"
MIN_FRAGMENT = 6  # a run this long, shared with a secret, counts as (part of) that secret
# In files other tools write (allure's UUIDs and md5 history IDs, hex through and through), 6 hex
# characters of a 32-hex token turn up by chance in about 3% of runs. There (redact_tree and the leak
# scan: ``bounded``), a run shorter than this counts only when it stands alone, not inside a longer
# identifier; pytest's own texts, the terminal and our reports are redacted without that exception.
LONG_FRAGMENT = 10
_WORD = re.compile(r"[A-Za-z0-9]")


def secret_forms(secret: str) -> list[str]:
    """The spellings a secret takes in files other tools write: raw, JSON-, XML- and URL-escaped."""
    from html import escape as xml_escape
    from urllib.parse import quote, quote_plus

    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        xml_escape(secret),
        xml_escape(secret, quote=False),
        quote(secret, safe=""),
        quote_plus(secret),
    }
    return sorted((f for f in forms if f), key=len, reverse=True)


def _windows(values: Iterable[Any], n: int) -> set[Any]:
    out: set[Any] = set()
    for v in values:
        out.update(v[i : i + n] for i in range(len(v) - n + 1))
    return out


def _pattern(secrets: Sequence[Any], n: int, *, as_bytes: bool) -> re.Pattern[Any] | None:
    """One regex finding, at every position (overlapping, through a lookahead), an ``n``-long window
    of any secret, or a whole secret shorter than ``n``."""
    long_ = [s for s in secrets if len(s) >= n]
    short = [s for s in secrets if len(s) < n]
    alts = sorted(_windows(long_, n), reverse=True) + sorted(short, key=len, reverse=True)
    if not alts:
        return None
    sep, head, tail = (b"|", b"(?=(", b"))") if as_bytes else ("|", "(?=(", "))")
    body: Any = sep.join(re.escape(a) for a in alts)
    return re.compile(head + body + tail)


@functools.lru_cache(maxsize=64)
def _secret_pattern(value: str, min_len: int, as_bytes: bool) -> re.Pattern[Any] | None:
    """One secret's pattern, built once: a run's last pass scans some 1,600 files (allure results,
    failures) and building the regex per file and secret was most of its ~1 s."""
    forms = secret_forms(value)
    return _pattern([f.encode() for f in forms] if as_bytes else forms, min_len, as_bytes=as_bytes)


def _is_word(text: Any, i: int) -> bool:
    if i < 0 or i >= len(text):
        return False
    c = text[i]
    return bool(_WORD.match(chr(c) if isinstance(c, int) else c))


def _stands_alone(text: Any, start: int, end: int) -> bool:
    """The span is at least LONG_FRAGMENT long, or the letters and digits around it add at most one
    character (a one-character-off copy of a token), i.e. it is not a piece of a longer identifier."""
    if end - start >= LONG_FRAGMENT:
        return True
    extra = 0
    i = start - 1
    while _is_word(text, i) and extra <= 1:
        extra, i = extra + 1, i - 1
    i = end
    while _is_word(text, i) and extra <= 1:
        extra, i = extra + 1, i + 1
    return extra <= 1


def _covered(text: Any, pattern: re.Pattern[Any] | None, bounded: bool = False) -> list[tuple[int, int]]:
    """Merged [start, end) spans of ``text`` made of secret windows (the union of every hit); with
    ``bounded``, only those that stand alone (see LONG_FRAGMENT)."""
    if pattern is None:
        return []
    spans: list[tuple[int, int]] = []
    for m in pattern.finditer(text):
        start, end = m.start(), m.start() + len(m.group(1))
        if spans and start <= spans[-1][1]:
            if end > spans[-1][1]:
                spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    if bounded:
        spans = [(a, b) for a, b in spans if _stands_alone(text, a, b)]
    return spans


def _replace(text: AnyStr, spans: list[tuple[int, int]], mark: AnyStr) -> AnyStr:
    if not spans:
        return text
    parts: list[AnyStr] = []
    last = 0
    for start, end in spans:
        parts += [text[last:start], mark]
        last = end
    parts.append(text[last:])
    return text[:0].join(parts)


class Redactor:
    """Replaces each secret, and every run of 6+ characters of one, with ``[redacted]``.

    A run of ``min_len`` characters or more that is a substring of any secret is cut out wherever it
    stands (a truncated ``'abcdefghijklm...'``, a one-character-off wrong token), so no part of a
    secret long enough to matter survives; a secret shorter than ``min_len`` is replaced whole.
    One compiled regex finds every window; text without any is returned unchanged.
    """

    def __init__(self, secrets: Iterable[str], *, min_len: int = MIN_FRAGMENT, bounded: bool = False) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self.min_len = min_len
        self.bounded = bounded
        self._text = _pattern(self.secrets, min_len, as_bytes=False)
        self._bytes = _pattern([s.encode() for s in self.secrets], min_len, as_bytes=True)

    def text(self, s: str) -> str:
        return _replace(s, _covered(s, self._text, self.bounded), REDACTED)

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def bytes(self, b: bytes) -> bytes:
        return _replace(b, _covered(b, self._bytes, self.bounded), REDACTED.encode())

    def escaped(self) -> Redactor:
        """A redactor for files other tools wrote (junit.xml, allure-results): it also knows every
        escaped spelling of the secrets (JSON, XML, URL), and leaves a short run inside a longer
        identifier alone (``bounded``: an allure UUID is not cut, the leak scan does the same)."""
        return Redactor([f for s in self.secrets for f in secret_forms(s)], min_len=self.min_len, bounded=True)


# --- Leak scanning: the last pass of a run --------------------------------------------------------------


@dataclass(frozen=True)
class Leak:
    """Where part of a secret was found. Never holds the fragment itself: ``secret`` is the index of
    the secret in the sequence given to the scan, ``kind`` its name when a mapping was given."""

    where: str  # a file path, or the name given to scan_text
    line: int  # 1-based line of the first character (0 for a file name)
    offset: int  # 0-based character/byte offset in the file or text (in the name, for a name)
    secret: int  # index of the secret
    kind: str  # its name ("senha", "token", …) or "secret #<index>"
    length: int  # how many characters/bytes of it were found in one run

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.length} characters of {self.kind} (at offset {self.offset})"


def _named(secrets: Sequence[str] | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(secrets, Mapping):
        return [(str(k), v) for k, v in secrets.items()]
    return [(f"secret #{i}", v) for i, v in enumerate(secrets)]


def _scan(
    data: Any, secrets: list[tuple[str, str]], min_len: int, where: str, *, as_bytes: bool, strict: bool
) -> list[Leak]:
    leaks: list[Leak] = []
    newline = b"\n" if as_bytes else "\n"
    for index, (kind, value) in enumerate(secrets):
        if not value:
            continue
        pattern = _secret_pattern(value, min_len, as_bytes)
        for start, end in _covered(data, pattern, bounded=not strict):
            leaks.append(Leak(where, data.count(newline, 0, start) + 1, start, index, kind, end - start))
    leaks.sort(key=lambda k: (k.offset, k.secret))
    return leaks


def scan_text(
    text: str,
    secrets: Sequence[str] | Mapping[str, str],
    min_len: int = MIN_FRAGMENT,
    *,
    where: str = "<terminal>",
    strict: bool = False,
) -> list[Leak]:
    """Every run of ``min_len``+ characters of any secret (or of its JSON/XML/URL spelling) in
    ``text``, e.g. the captured terminal stream of a run. Empty list: nothing leaked.

    Unless ``strict``, a run shorter than LONG_FRAGMENT (10) inside a longer run of letters and
    digits (a UUID, an md5) is taken for the coincidence it almost always is; see scan_for_leaks."""
    return _scan(text, _named(secrets), min_len, where, as_bytes=False, strict=strict)


def _files(paths: Iterable[Path | str]) -> Iterator[Path]:
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for dirpath, _dirs, files in os.walk(p):
                for name in sorted(files):
                    yield Path(dirpath) / name
        elif p.is_file():
            yield p


def scan_for_leaks(
    paths: Iterable[Path | str],
    secrets: Sequence[str] | Mapping[str, str],
    min_len: int = MIN_FRAGMENT,
    *,
    strict: bool = False,
) -> list[Leak]:
    """The last pass of a run: every place under ``paths`` where part of a secret survived.

    ``paths`` are files or folders (walked recursively: reports/, junit.xml, allure-results with
    its JSON results and attachments, failures/). Each file is searched as bytes, for every run of
    ``min_len`` or more bytes shared with a secret in any spelling (raw UTF-8, JSON-, XML- and
    URL-escaped), and each file's name as text. ``secrets`` is a sequence (a leak names the secret by
    its index) or a mapping name → value (a leak names it by its key, e.g. "senha").

    A run of LONG_FRAGMENT (10) or more always counts. A shorter one counts when it stands alone:
    the letters and digits around it add at most one character (``'Sx9senha...'``, ``"X" + token[1:]``,
    ``token=a3f0c4d2``). Inside a longer identifier (allure's UUIDs and md5 history IDs are hex, and
    6 hex characters of a token turn up there by chance in about 3% of runs) it is not a leak, unless
    ``strict``. :func:`pbxcheck.report.redact_tree` applies the same rule, so a scan after it is clean
    unless something escaped redaction.

    Returns the leaks, first by file, then by offset; an empty list means the run is clean. A leak
    never carries the fragment, so printing it is safe: the caller fails the run loudly with
    ``str(leak)`` for each.
    """
    named = _named(secrets)
    leaks: list[Leak] = []
    for path in _files(paths):
        for leak in _scan(path.name, named, min_len, str(path), as_bytes=False, strict=strict):
            leaks.append(Leak(str(path), 0, leak.offset, leak.secret, leak.kind, leak.length))
        try:
            data = path.read_bytes()
        except OSError:
            continue
        leaks += _scan(data, named, min_len, str(path), as_bytes=True, strict=strict)
    return leaks


def curl_line(
    url: str,
    body: Any,
    *,
    redactor: Redactor,
    insecure: bool = False,
    ca_file: str | None = None,
    interface: str | None = None,
) -> str:
    """A copy-paste reproduction of one API call, secrets shown as [redacted]."""
    payload = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    parts = ["curl", "-sS", "-X", "POST"]
    if insecure:
        parts.append("-k")
    if ca_file:
        parts += ["--cacert", ca_file]
    if interface:
        parts += ["--interface", interface]
    parts += ["-H", "Content-Type: application/json", "--data-binary", redactor.text(payload), url]
    return " ".join(shlex.quote(p) for p in parts)
