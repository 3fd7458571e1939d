"""CL-REQ-1 (POST /api.php, one JSON object, credentials only in it), CL-REQ-2 (each acao's fields
as the contract names and shapes them) and CL-REQ-3 (UTF-8 JSON), read off every recorded call."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import contract as C
from ..contract import ClauseId
from .judge_transport import carries
from .recorder import Exchange
from .verdicts import ClauseVerdict, Evidence, check_name

ALT_API_PATH = "/discador.php"  # AMB-4: the click-to-call example's endpoint
# Names the document's own examples use instead of the contract's: (contract's name, ambiguity).
ALIASES: dict[str, tuple[str, str]] = {
    "ldcampanha": ("idcampanha", "AMB-1"),
    C.DATAINICIAL_ALIAS: ("datainicial", "AMB-3"),
}
DATE_FIELDS = ("datainicial",)
TYPOGRAPHIC_QUOTES = ("\u201c", "\u201d")
DDD = re.compile(r"\d{2}")
LOCAL_NUMBER = re.compile(r"\d{8,9}")  # a Brazilian number without its DDD
ENVELOPE = ("acao", *C.AUTH_FIELDS)


def _optional(acao: C.Acao) -> tuple[str, ...]:
    if acao is C.Acao.INSERT:
        return C.INSERT_FIELDS
    if acao in (C.Acao.STATUSREPORT, C.Acao.STATUSOPERACOES):
        return DATE_FIELDS
    return ()


def known_fields(acao: C.Acao) -> tuple[str, ...]:
    return (*ENVELOPE, *C.REQUIRED_FIELDS[acao], *_optional(acao))


def _api_call(ex: Exchange) -> bool:
    return ex.path in (C.API_PATH, ALT_API_PATH)


# --- CL-REQ-1 --------------------------------------------------------------------------------------


def judge_req_1(ev: Evidence, secrets: Sequence[str]) -> ClauseVerdict:
    v = ClauseVerdict(ClauseId.CL_REQ_1)
    for ex in ev.api_calls():
        check = check_name(ex)
        v.checked.append(check)
        _credentials_outside_body(v, ex, check, secrets)
        if ex.path.startswith(C.RECORDINGS_PATH) and ex.method in ("GET", "HEAD"):
            continue  # a recording download (REC-1): no body to judge
        if ex.path == ALT_API_PATH:
            v.fail(check, f"{ex.method} {ALT_API_PATH}, not {C.API_PATH} (AMB-4)", ex)
            v.deviation(f"AMB-4: {ALT_API_PATH} instead of {C.API_PATH}")
        elif ex.path != C.API_PATH:
            v.fail(check, f"{ex.method} {ex.path}: not {C.API_PATH}", ex)
            continue
        if ex.method != "POST":
            v.fail(check, f"{ex.method} {ex.path}: not a POST", ex)
        data = ex.json()
        if data is None:
            continue  # not JSON at all: CL-REQ-3 says so
        if not isinstance(data, dict):
            v.fail(check, f"the body is JSON but not one object ({type(data).__name__})", ex)
            continue
        missing = [f for f in ENVELOPE if f not in data]
        if missing:
            v.fail(check, f"{ex.acao or 'a call'}: the body lacks {', '.join(missing)}", ex)
    v.checked = list(dict.fromkeys(v.checked))
    if not v.checked:
        v.not_applicable = "the command made no HTTPS call to the audit central"
    return v


def _credentials_outside_body(v: ClauseVerdict, ex: Exchange, check: str, secrets: Sequence[str]) -> None:
    url = Exchange(ex.phase, ex.port, ex.method, ex.path, ex.query, [], b"", ex.at)
    if carries(url, secrets):
        v.fail(check, "credentials in the URL or its query string", ex)
    for name, value in ex.headers:
        if name.lower() == "authorization":
            scheme = value.split(" ", 1)[0]
            v.fail(check, f"an Authorization header ({scheme}): credentials travel only in the body", ex)
            if scheme.lower() == "bearer":
                v.deviation("AMB-4: credentials in an Authorization: Bearer header")
        elif any(s and s in value for s in secrets):
            v.fail(check, f"credentials in the {name} header", ex)


# --- CL-REQ-3 --------------------------------------------------------------------------------------


def judge_req_3(ev: Evidence) -> ClauseVerdict:
    v = ClauseVerdict(ClauseId.CL_REQ_3)
    for ex in ev.api_calls():
        if not _api_call(ex) or ex.method != "POST":
            continue
        check = check_name(ex)
        v.checked.append(check)
        if not ex.body:
            v.fail(check, "an empty body", ex)
            continue
        try:
            text = ex.body.decode("utf-8")
        except UnicodeDecodeError:
            v.fail(check, "the body is not UTF-8", ex)
            continue
        try:
            json.loads(text)
        except ValueError as exc:
            if any(q in text for q in TYPOGRAPHIC_QUOTES):
                v.fail(check, "typographic quotes (“ ”) in the body: not JSON (AMB-5)", ex)
                v.deviation('AMB-5: typographic quotes instead of "')
            else:
                v.fail(check, f"the body is not JSON ({str(exc).split(':')[0]})", ex)
    v.checked = list(dict.fromkeys(v.checked))
    if not v.checked:
        v.not_applicable = "the command made no POST to /api.php"
    return v


# --- CL-REQ-2 --------------------------------------------------------------------------------------


def judge_req_2(ev: Evidence) -> ClauseVerdict:
    v = ClauseVerdict(ClauseId.CL_REQ_2)
    for ex in ev.api_calls():
        data = ex.json() if _api_call(ex) else None
        if not isinstance(data, dict) or "acao" not in data:
            continue
        check = check_name(ex)
        v.checked.append(check)
        for message, deviation in body_problems(data):
            v.fail(check, message, ex)
            if deviation:
                v.deviation(deviation)
    v.checked = list(dict.fromkeys(v.checked))
    if not v.checked:
        v.not_applicable = "the command sent no JSON object with an acao"
    return v


def body_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(message, named deviation or '') for each way ``data`` departs from its acao's fields."""
    raw = data.get("acao")
    if not isinstance(raw, str):
        return [("acao is not a string", "")]
    try:
        acao = C.Acao(raw.lower())  # AMB-2: the case of acao is unspecified
    except ValueError:
        return [(f"unknown acao {raw[:40]!r}", "")]
    out: list[tuple[str, str]] = []
    known = known_fields(acao)
    renamed: dict[str, str] = {}  # the contract's name -> the name the client used
    for key in data:
        if key in known:
            continue
        alias = ALIASES.get(key)
        if alias and alias[0] in known:
            renamed[alias[0]] = key
            out.append(
                (
                    f"{acao}: `{key}` instead of `{alias[0]}` ({alias[1]})",
                    f"{alias[1]}: `{key}` instead of `{alias[0]}` ({acao})",
                )
            )
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close:
            renamed[close[0]] = key
            out.append((f"{acao}: `{key}` instead of `{close[0]}`", f"`{key}` instead of `{close[0]}` ({acao})"))
    for f in C.REQUIRED_FIELDS[acao]:
        if f not in data and f not in renamed:
            out.append((f"{acao}: lacks {f}", ""))
    for key, value in data.items():
        if not isinstance(value, str):
            out.append((f"{acao}: {key} is {type(value).__name__}, not a string", ""))
        elif len(value) > C.MAX_TEXT:
            out.append((f"{acao}: {key} has {len(value)} characters (at most {C.MAX_TEXT})", ""))
    for f in DATE_FIELDS:
        value = data.get(f)
        if isinstance(value, str) and value and not _is_date(value):
            out.append((f"{acao}: {f} is not YYYY-MM-DD HH:ii:ss", ""))
    if acao is C.Acao.INSERT:
        out += [(f"{acao}: {m}", "") for m in phone_problems(data)]
    return out


def _is_date(value: str) -> bool:
    try:
        datetime.strptime(value, C.DATE_FORMAT)
    except ValueError:
        return False
    return len(value) == 19


def phone_problems(data: dict[str, Any]) -> list[str]:
    """DDD apart from the number: telN (8-9 digits) goes with dddN (2 digits)."""
    out = []
    for i in range(1, C.MAX_PHONES + 1):
        tel, ddd = data.get(f"tel{i}"), data.get(f"ddd{i}")
        if not isinstance(tel, str) or not tel:
            continue
        if not isinstance(ddd, str) or not ddd:
            out.append(f"tel{i} without ddd{i}")
        elif not DDD.fullmatch(ddd):
            out.append(f"ddd{i} is not 2 digits")
        if not LOCAL_NUMBER.fullmatch(tel):
            out.append(f"tel{i} is not 8-9 digits (the DDD goes in ddd{i})")
    return out
