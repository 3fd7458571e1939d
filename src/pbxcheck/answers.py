"""Reading the central's PHP-style answers.

The central is PHP (``json_encode`` of arrays): a ``["Status","…"]`` list, a list of records whose
columns appear under their position and their name (``{"0":"1","id":"1",…}``), or one object. The
document's own example (AMB-6) has backslashes that are not JSON escapes (``"2020\\12\\30\\…"``), and
other examples use typographic quotes (AMB-5). A client must read them all and say what it forgave.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import AnswerError

# JSON allows only these after a backslash (RFC 8259 section 7).
_BAD_ESCAPE = re.compile(r'\\(?!["\\/bfnrtu])|\\u(?![0-9a-fA-F]{4})')
_TYPOGRAPHIC = str.maketrans({"“": '"', "”": '"', "„": '"', "″": '"'})


@dataclass(frozen=True)
class Answer:
    """One parsed answer: ``value`` is the JSON; ``lenient`` lists what had to be forgiven."""

    status_code: int
    value: Any
    raw: bytes
    lenient: tuple[str, ...] = field(default=())

    @property
    def status_pair(self) -> tuple[str, str] | None:
        """("Status", "OK") for ``["Status","OK"]``; None for any other shape."""
        v = self.value
        if isinstance(v, list) and len(v) >= 2 and all(isinstance(x, str) for x in v[:2]):
            return (v[0], v[1])
        return None

    def is_status(self, text: str, key: str = "Status") -> bool:
        return self.status_pair == (key, text)


def parse_answer(raw: bytes, status_code: int = 200) -> Answer:
    """Parse a body as the central's JSON, forgiving AMB-5 quotes and AMB-6 escapes (recorded)."""
    lenient: list[str] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        lenient.append("body is not UTF-8; read as Latin-1")
    if text.startswith("\ufeff"):
        text = text[1:]
        lenient.append("UTF-8 byte order mark")
    stripped = text.strip()
    if not stripped:
        raise AnswerError("empty body", raw)
    try:
        return Answer(status_code, json.loads(stripped), raw, tuple(lenient))
    except json.JSONDecodeError:
        pass
    fixed = stripped
    if _BAD_ESCAPE.search(fixed):
        fixed = _BAD_ESCAPE.sub(r"\\\\", fixed)
        lenient.append("invalid backslash escapes kept as literal backslashes (AMB-6)")
    if any(q in fixed for q in "“”„″"):
        fixed = fixed.translate(_TYPOGRAPHIC)
        lenient.append('typographic quotes read as " (AMB-5)')
    try:
        return Answer(status_code, json.loads(fixed), raw, tuple(lenient))
    except json.JSONDecodeError as exc:
        raise AnswerError(f"not JSON even leniently: {exc}", raw) from None


def record_pairs_agree(record: dict[str, Any], columns: tuple[str, ...]) -> list[str]:
    """For a PHP fetch-both record: the problems, if any, between positional and named keys."""
    problems = []
    for pos, name in enumerate(columns):
        sp = str(pos)
        if sp not in record:
            problems.append(f"position {sp} ({name}) missing")
        if name not in record:
            problems.append(f"column {name!r} missing")
        if sp in record and name in record and record[sp] != record[name]:
            problems.append(f"position {sp} = {record[sp]!r} but {name} = {record[name]!r}")
    return problems
