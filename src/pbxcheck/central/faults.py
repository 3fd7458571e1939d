"""Fault switches: each breaks one HTTP clause the way a real central could.

``pbxcheck central --fault NAME`` turns one on; the suites prove themselves by going red against
it (tests/quality/). A fault changes exactly the answers its clauses are about and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sip.faults import SIP_FAULTS


@dataclass(frozen=True)
class Fault:
    name: str
    clauses: tuple[str, ...]
    description: str


HTTP_FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("plain-http-accepted", ("AUTH-4",), "the plain-HTTP port serves the API like the HTTPS one"),
    # the source IP is AUTH-2's fourth factor, but the suites charge a foreign-IP call to AUTH-3 (one token, one IP)
    Fault("ignore-source-ip", ("AUTH-3",), "the source IP bound to the token is not checked"),
    # login+senha then match the foreign instance too, so the main credentials pass from its IP (AUTH-3)
    Fault("ignore-token", ("AUTH-2", "AUTH-3"), "the token is not checked (login and senha suffice)"),
    Fault("ignore-senha", ("AUTH-2",), "the senha is not checked"),
    Fault("denial-reveals-factor", ("AUTH-2", "AUTH-6"),
          "each wrong factor gets its own denial string (a wrong login is not Login/Senha Invalido; enumeration)"),
    Fault("status-string-changed", ("DIAL-INS-1",), 'insert answers ["Status","Ok"] instead of "OK"'),
    Fault("campaign-check-skipped", ("DIAL-INS-2",),
          "an unknown idcampanha is answered OK and the contact inserted"),
    Fault("denied-insert-side-effect", ("AUTH-5", "DIAL-INS-3"),
          "a denied insert is carried out, then the denial is answered"),
    Fault("field-truncated-200", ("DIAL-INS-4",), "insert values are cut at 200 characters"),
    Fault("accents-mangled", ("DIAL-INS-4",), "insert values are stored Latin-1 double-encoded (Ã\u0081 for Á)"),
    Fault("long-field-500", ("DIAL-INS-4",), "an insert value of 255+ characters gets an HTTP 500"),
    Fault("keys-disagree", ("DIAL-ST-1",), "position 52 carries data_insert as dd/mm/YYYY, its name YYYY-mm-dd"),
    Fault("missing-column", ("DIAL-ST-1",), "statusdiscador records lack the cuje column (both keys)"),
    Fault("fresh-not-aguardando", ("DIAL-ST-2",), "a fresh contact is listed as Dialing at once"),
    Fault("status-lowercase", ("DIAL-ST-3",), 'status values in lower case ("aguardando", "concluido")'),
    Fault("tentativas-over-5", ("DIAL-ST-3",), "EXCEDIDO contacts show tentativas 6"),
    Fault("detail-short-duration", ("DIAL-DET-1",), "statusdetalhado gives duracao ≤ 10 for a CONCLUIDO call"),
    Fault("detail-wrong-uniqueid", ("DIAL-DET-1",), "statusdetalhado uniqueid is not <epoch>.<seq>"),
    Fault("detail-wrong-mailing", ("DIAL-DET-1",), "statusdetalhado id_mailing does not echo idmailing"),
    Fault("delete-count-wrong", ("DIAL-DEL-1",), "deletediscador answers one more than it deleted (0 becomes 1)"),
    Fault("delete-leaves-rows", ("DIAL-DEL-1",), "deletediscador leaves AGUARDANDO contacts behind"),
    Fault("report-501-rows", ("REP-1",), "statusreport returns up to 501 records"),
    Fault("report-before-datainicial", ("REP-1",), "statusreport includes the day before datainicial"),
    Fault("report-empty-date-all", ("REP-2",), "an empty datainicial returns the oldest records, not today's"),
    Fault("report-bad-date-500", ("REP-2",), "a malformed datainicial gets an HTTP 500"),
    Fault("ops-empty", ("OPS-1",), "statusoperacoes answers []"),
    Fault("recording-size-mismatch", ("REC-1",), "recordings are one frame shorter than tamanho_gravacao"),
    Fault("recording-not-gsm", ("REC-1",), "recordings are served as WAV-looking bytes, not GSM frames"),
    Fault("recording-missing", ("REC-1",), "recordings answer 404"),
    Fault("c2c-bad-id", ("C2C-1",), "clicktocall ID lacks the timestamp part (<origem>_<digits>)"),
    Fault("c2c-wrong-status", ("C2C-1",), 'clicktocall answers "CHAMADA EFETUADA" instead of "CHAMADA OK"'),
    Fault("c2c-no-record", ("C2C-3",), "a clicktocall leaves no call record with its ID"),
    Fault("ramais-missing-field", ("RAM-1",), "statusramais objects lack IDCHAMADA"),
    Fault("classe5-noop", ("C5-1",), "bloqueioclasse5 answers but blocks nothing"),
    Fault("server-error-on-bad-json", ("AUTH-1",), "a malformed body gets an HTTP 500 with a PHP error"),
    # issue 9 (5): denials judged by effect, per acao
    # login+senha also match the foreign instance, so our token passes from its IP too (AUTH-3)
    Fault("classe5-ignores-token", ("AUTH-2", "AUTH-3"),
          "bloqueioclasse5 (only) accepts a wrong token when login and senha are right"),
    Fault("classe5-ignores-source-ip", ("AUTH-3",),
          "bloqueioclasse5 (only) accepts the right token from a source IP it is not bound to"),
    Fault("denied-delete-side-effect", ("AUTH-5",),
          "a denied deletediscador still deletes the campaign's contacts, then answers the denial"),
    Fault("denied-classe5-side-effect", ("AUTH-5",),
          "a denied bloqueioclasse5 still sets the client's block state, then answers the denial"),
    Fault("denied-c2c-side-effect", ("AUTH-5",), "a denied clicktocall still places the call, then answers the denial"),
)}


# Not a contract clause: performance only (issue 11). Kept apart from HTTP_FAULTS, whose every fault
# must turn a clause red; `pbxcheck load --baseline` is what goes red against these.
PERF_FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("slow-api", (), "every API answer is delayed by a fixed 50 ms (load regression detection)"),
)}
SLOW_API_DELAY = 0.050  # seconds added to every answer under slow-api


def _sip_faults() -> dict[str, Fault]:
    """The SIP side declares its own switches (``central/sip/faults.py``)."""
    return {name: Fault(name, clauses, description) for name, clauses, description in SIP_FAULTS}


FAULTS: dict[str, Fault] = {**HTTP_FAULTS, **PERF_FAULTS, **_sip_faults()}


def validate(names: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """The names as a set; ValueError naming the first unknown one."""
    for name in names:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
    return frozenset(names)
