"""The statusdiscador record of one contact, rendered once and stored as JSON bytes.

A listing of 100,000 contacts must come back in well under a second, so the central never
serialises a listing: each contact row keeps its record (every column under its position *and* its
name, PHP ``fetch_array`` style, DIAL-ST-1) as a ready JSON fragment, rebuilt only when the row
changes, and a listing is ``[`` + fragments joined by ``,`` + ``]``.

Faults that change how a record is *shown* (not what is stored) are applied here, so a stored
fragment depends on the fault set; :data:`RENDER_FAULTS` names them and the store re-renders every
fragment when a database is opened under a different set.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring  # the C encoder, no ASCII escaping
from typing import Any

from ..contract import CONTACT_COLUMNS, MAX_TRIES, ContactStatus

RENDER_FAULTS = frozenset({"status-lowercase", "tentativas-over-5", "keys-disagree", "missing-column"})

_KEYS = tuple((f'"{i}":', f'"{name}":') for i, name in enumerate(CONTACT_COLUMNS))
_DROPPED = "cuje"  # the column "missing-column" leaves out (both keys)
_POS_DATA_INSERT = CONTACT_COLUMNS.index("data_insert")


def _php_date(value: str) -> str:
    """2020-12-30 08:12:43 -> 30/12/2020 08:12:43: the shape a central formatting one key by hand gives."""
    if len(value) >= 10 and value[4] == "-" and value[7] == "-":
        return f"{value[8:10]}/{value[5:7]}/{value[0:4]}{value[10:]}"
    return value + " "


def _compile_plain() -> Callable[[dict[str, str]], bytes]:
    """The fault-free render as one generated function: 53 encodes and a single f-string, which
    Python builds in one allocation. Every insert renders a record, and this is 2-3x faster than
    the loop in :func:`render_generic`; tests hold the two equal."""
    lines = ["def render_plain(c):"]
    lines += [f"    e{i} = enc(c[{name!r}])" for i, name in enumerate(CONTACT_COLUMNS)]
    pairs = ",".join(f'"{i}":{{e{i}}},"{name}":{{e{i}}}' for i, name in enumerate(CONTACT_COLUMNS))
    lines.append("    return f'{{" + pairs + "}}'.encode()")
    namespace: dict[str, Any] = {"enc": encode_basestring}
    exec("\n".join(lines), namespace)  # noqa: S102  (source built above from the contract's column names)
    return namespace["render_plain"]  # type: ignore[no-any-return]


render_plain = _compile_plain()


def render(columns: dict[str, str], faults: frozenset[str] = frozenset()) -> bytes:
    """One record as JSON bytes; ``columns`` maps every CONTACT_COLUMNS name to a string."""
    if faults & RENDER_FAULTS:
        return render_generic(columns, faults)
    return render_plain(columns)


def render_generic(columns: dict[str, str], faults: frozenset[str] = frozenset()) -> bytes:
    """The same record built column by column, with the render faults applied."""
    if faults & RENDER_FAULTS:
        columns = dict(columns)
        if "status-lowercase" in faults:
            columns["status"] = columns["status"].lower()
        if "tentativas-over-5" in faults and columns["status"].upper() == ContactStatus.EXCEDIDO.value:
            columns["tentativas"] = str(MAX_TRIES + 1)
    parts = []
    for (pos_key, name_key), name in zip(_KEYS, CONTACT_COLUMNS, strict=True):
        if name == _DROPPED and "missing-column" in faults:
            continue
        enc = encode_basestring(columns[name])
        if name == "data_insert" and "keys-disagree" in faults:
            parts.append(pos_key + encode_basestring(_php_date(columns[name])) + "," + name_key + enc)
            continue
        parts.append(pos_key + enc + "," + name_key + enc)
    return ("{" + ",".join(parts) + "}").encode()


assert CONTACT_COLUMNS[_POS_DATA_INSERT] == "data_insert"
