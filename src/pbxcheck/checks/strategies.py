"""Hypothesis strategies for the API's payloads: valid contacts and hostile insert bodies.

Valid means what the document allows (DIAL-INS-4): a CPF with correct check digits, two-digit DDDs,
8-9 digit phones, accented names, open text fields up to 254 characters, 1 to 5 phones. Hostile
means what a careless or malicious client sends: 255+ characters, wrong types, missing and unknown
fields, bodies that are not JSON (AMB-5's typographic quotes among them), huge bodies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from ..contract import MAX_PHONES, MAX_TEXT, OPEN_TEXT_FIELDS, ClauseId

ACCENTED = "ÁÉÍÓÚÂÊÔÃÕÀÇÜáéíóúâêôãõàçü"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Open text may hold anything a CRM sends; quotes and backslashes included, since JSON carries them.
TEXT_ALPHABET = LETTERS + ACCENTED + "0123456789 -./,;:'\"&()#ºª@\\"


def cpf_check_digits(nine: str) -> str:
    """The two check digits of a CPF (Receita Federal's mod-11 rule)."""
    digits = [int(c) for c in nine]
    d1 = sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) * 10 % 11 % 10
    d2 = sum(d * w for d, w in zip(digits + [d1], range(11, 1, -1), strict=True)) * 10 % 11 % 10
    return f"{d1}{d2}"


def cpf_is_valid(cpf: str) -> bool:
    return len(cpf) == 11 and cpf.isdigit() and cpf_check_digits(cpf[:9]) == cpf[9:]


cpfs = st.text("0123456789", min_size=9, max_size=9).map(lambda n: n + cpf_check_digits(n))
ddds = st.integers(11, 99).map(str)  # two digits, never a leading zero (Brazil's DDDs are 11-99)
phones = st.one_of(
    st.integers(2000_0000, 5999_9999).map(str),  # landline, 8 digits
    st.integers(9_0000_0000, 9_9999_9999).map(str),  # mobile, 9 digits starting with 9
)


def _trim(s: str) -> str:
    return s.strip()


names = st.one_of(
    st.just("NOME DO RESPONSÁVEL"),
    st.text(LETTERS + ACCENTED + " ", min_size=1, max_size=60).map(_trim).filter(bool),
)
short_text = st.text(TEXT_ALPHABET, max_size=40).map(_trim)
exactly_254 = st.tuples(st.sampled_from(ACCENTED + LETTERS), st.text(TEXT_ALPHABET, max_size=20)).map(
    lambda t: (t[1] + t[0] * MAX_TEXT)[:MAX_TEXT]
)
open_values = st.one_of(short_text, short_text, short_text, exactly_254)


@st.composite
def valid_contacts(draw: st.DrawFn) -> dict[str, str]:
    """The contact fields of an insert (no acao, credentials or idcampanha): 1-5 phones, some open fields."""
    contact: dict[str, str] = {"cliente": draw(names), "cpf": draw(cpfs)}
    for i in range(1, draw(st.integers(1, MAX_PHONES)) + 1):
        contact[f"ddd{i}"] = draw(ddds)
        contact[f"tel{i}"] = draw(phones)
    chosen = draw(st.lists(st.sampled_from(OPEN_TEXT_FIELDS), max_size=6, unique=True))
    for name in chosen:
        contact[name] = draw(open_values)
    return contact


# --- hostile bodies ---------------------------------------------------------------------------------

# Which clause a hostile kind tests, and whether "OK and a new row" is a failure (False) or one of the
# plausible readings the target may choose ([unspecified], observed).
HOSTILE_KINDS: dict[str, tuple[ClauseId, bool]] = {
    "not-json": (ClauseId.AUTH_1, False),
    "typographic-quotes": (ClauseId.AUTH_1, False),
    "not-an-object": (ClauseId.AUTH_1, False),
    "bad-utf8": (ClauseId.AUTH_1, False),
    "wrong-type": (ClauseId.DIAL_INS_4, False),
    "missing-field": (ClauseId.DIAL_INS_4, False),
    "unknown-field": (ClauseId.DIAL_INS_4, True),
    "too-long": (ClauseId.DIAL_INS_4, True),
    "huge": (ClauseId.DIAL_INS_4, True),
}


@dataclass(frozen=True)
class Hostile:
    """A hostile body, built from the valid one the check makes (credentials and idcampanha in it)."""

    kind: str
    detail: str
    build: Callable[[dict[str, Any]], Any]  # valid body dict -> dict, str or bytes to POST

    @property
    def clause(self) -> ClauseId:
        return HOSTILE_KINDS[self.kind][0]

    @property
    def success_plausible(self) -> bool:
        return HOSTILE_KINDS[self.kind][1]

    def __repr__(self) -> str:  # Hypothesis prints this in a falsifying example
        return f"Hostile({self.kind}: {self.detail})"


def typographic(body: dict[str, Any]) -> str:
    """The body as the document's examples print it: “ ” instead of " (AMB-5)."""
    text = json.dumps(body, ensure_ascii=False)
    out, opening = [], True
    for ch in text:
        if ch == '"':
            out.append("“" if opening else "”")
            opening = not opening
        else:
            out.append(ch)
    return "".join(out)


def _drop(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda b: {k: v for k, v in b.items() if k != name}


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda b: {**b, name: value}


not_json = st.sampled_from(
    [
        Hostile("not-json", "truncated JSON", lambda b: json.dumps(b, ensure_ascii=False)[:-1]),
        Hostile("not-json", "form-encoded", lambda b: "&".join(f"{k}={v}" for k, v in b.items())),
        Hostile("not-json", "single quotes", lambda b: json.dumps(b, ensure_ascii=False).replace('"', "'")),
        Hostile("not-json", "empty body", lambda b: ""),
        Hostile("not-json", "trailing garbage", lambda b: json.dumps(b, ensure_ascii=False) + "}{"),
    ]
)
typographic_quotes = st.just(Hostile("typographic-quotes", "“ ” for every quote", typographic))
not_an_object = st.sampled_from(
    [
        Hostile("not-an-object", "array of the body", lambda b: json.dumps([b])),
        Hostile("not-an-object", "JSON string", lambda b: json.dumps(json.dumps(b))),
        Hostile("not-an-object", "JSON number", lambda b: "42"),
        Hostile("not-an-object", "JSON null", lambda b: "null"),
    ]
)
bad_utf8 = st.just(
    Hostile(
        "bad-utf8",
        "invalid UTF-8 in cliente",
        lambda b: json.dumps({**b, "cliente": "@@"}).encode().replace(b"@@", b"\xff\xfe"),
    )
)
wrong_type = st.builds(
    lambda field, value: Hostile("wrong-type", f"{field} = {json.dumps(value)}", _set(field, value)),
    st.sampled_from(["idcampanha", "cliente", "tel1", "ddd1", "gen1"]),
    st.sampled_from([{"x": "1"}, ["1", "2"], [], {}]),
)
missing_field = st.sampled_from(
    [
        Hostile("missing-field", "no idcampanha", _drop("idcampanha")),
        Hostile("missing-field", "no acao", _drop("acao")),
    ]
)
unknown_field = st.builds(
    lambda name: Hostile("unknown-field", f"extra field {name!r}", _set(name, "x")),
    st.sampled_from(["campo_desconhecido", "gen23", "tel6", "ddd6", "id"]),
)
too_long = st.builds(
    lambda field, n: Hostile("too-long", f"{field} of {n} characters", _set(field, "Á" * n)),
    st.sampled_from(["cliente", "endereco", "gen1", "gen22", "conta"]),
    st.integers(MAX_TEXT + 1, 1000),
)
huge = st.sampled_from(
    [
        Hostile("huge", "gen1 of 2 MiB", _set("gen1", "x" * (2 << 20))),
        Hostile(
            "huge", "an unknown field of 3 MB", lambda b: json.dumps(b)[:-1] + ', "gen99": "' + "y" * 3_000_000 + '"}'
        ),
    ]
)
hostile_inserts = st.one_of(
    not_json, typographic_quotes, not_an_object, bad_utf8, wrong_type, missing_field, unknown_field, too_long, huge
)


# --- other acoes ------------------------------------------------------------------------------------------

# Values a careless client puts in any field. Strings that look like SQL or paths are only ever sent
# to read-only acoes or as fields that name nothing real (see test_payloads.py): a central that would
# interpret them must not be given the chance to do damage.
HOSTILE_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "999999999999999999999",
            "1e9",
            "null",
            "NULL",
            "' OR '1'='1",
            "1; DROP TABLE contatos",
            "../../etc/passwd",
            "%00",
            "ÁÉÍÓÚ ção",
            "\u202e",
            "😀",
        ]
    ),
    st.text(TEXT_ALPHABET, min_size=MAX_TEXT + 1, max_size=600),
)
NON_STRINGS = st.sampled_from([{"x": "1"}, ["1"], [], {}, True, False, None, 3.5])
hostile_values = st.one_of(HOSTILE_TEXT, NON_STRINGS)

_any_datetime = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1))
# Most instants worth asking about lie in the last days, where a central has its records.
_recent = st.integers(0, 5 * 86400).map(lambda s: datetime.fromtimestamp(time.time() - s).replace(microsecond=0))
datetimes_text = st.one_of(_recent, _recent, _any_datetime).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S"))
malformed_dates = st.one_of(
    # Not a plausible other spelling of a date (2020-01-01 alone, or ISO 8601, could fairly be read as one).
    st.sampled_from(
        [
            "2020-13-01 00:00:00",
            "2020-02-30 00:00:00",
            "2020-01-01 25:00:00",
            "amanhã",
            "01/02/2020 00:00:00",
            "0000-00-00 00:00:00",
            "' OR '1'='1",
            "9" * 40,
        ]
    ),
    NON_STRINGS,
)
