"""CL-TLS-1 (HTTPS only) and CL-TLS-2 (the central's certificate verified)."""

from __future__ import annotations

from collections.abc import Sequence

from ..contract import ClauseId
from .recorder import PLAIN, TLS, Exchange
from .verdicts import IMPOSTOR_PHASE, ClauseVerdict, Evidence


def carries(ex: Exchange, secrets: Sequence[str]) -> bool:
    """Whether any secret travels anywhere in the request (URL, headers, body)."""
    blob = " ".join([ex.path, ex.query, *(v for _, v in ex.headers)]).encode("latin-1", "replace") + ex.body
    return any(s and s.encode() in blob for s in secrets)


def _credentials(ex: Exchange, secrets: Sequence[str]) -> str:
    return "its credentials in it" if carries(ex, secrets) else "no credential in it"


def judge_tls_1(ev: Evidence, secrets: Sequence[str]) -> ClauseVerdict:
    v = ClauseVerdict(ClauseId.CL_TLS_1)
    plain = [e for e in ev.exchanges if e.port == PLAIN]
    phases = list(dict.fromkeys(e.phase for e in ev.exchanges if e.port in (TLS, PLAIN)))
    v.checked = phases
    for e in plain:
        v.fail(e.phase, f"{e.line()} sent over plain http ({_credentials(e, secrets)})", e)
    if not phases:
        v.not_applicable = "the command made no call to the audit central"
    return v


def judge_tls_2(ev: Evidence, secrets: Sequence[str]) -> ClauseVerdict:
    v = ClauseVerdict(ClauseId.CL_TLS_2)
    if IMPOSTOR_PHASE not in ev.runs:
        v.not_applicable = "the impostor phase did not run (--serve)"
        return v
    if ev.impostor_connections == 0:
        v.not_applicable = "the command opened no connection to the impostor (API_URL unused?)"
        return v
    v.checked = [IMPOSTOR_PHASE]
    v.observations.append(
        (
            "impostor",
            f"{ev.impostor_connections} connection(s), {ev.impostor_handshakes} TLS handshake(s) completed,"
            f" {len(ev.impostor)} request(s)",
        )
    )
    if ev.impostor_refusals:
        v.observations.append(("impostor/handshake refused", ev.impostor_refusals[0]))
    for e in ev.impostor:
        v.fail(
            IMPOSTOR_PHASE,
            f"{e.line()} sent to a server whose certificate API_CA did not sign ({_credentials(e, secrets)})",
            e,
        )
    return v
