"""Fault switches: each breaks one HTTP clause the way a real central could.

``pbxcheck central --fault NAME`` turns one on; the suites prove themselves by going red against
it (tests/quality/). A fault changes exactly the answers its clauses are about and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ..contract import ClauseId
from .sip.faults import SIP_FAULTS


class Fault(StrEnum):
    """Every fault switch by name (HTTP, performance, SIP): ``--fault`` and ``validate`` accept exactly
    these, and a typo in a check or the central is a mypy error. The SIP members are declared by the SIP
    side in ``central/sip/faults.py`` (plain tuples); importing this module fails if the two drift."""

    # HTTP (HTTP_FAULTS) and performance (PERF_FAULTS)
    PLAIN_HTTP_ACCEPTED = "plain-http-accepted"
    IGNORE_SOURCE_IP = "ignore-source-ip"
    IGNORE_TOKEN = "ignore-token"
    IGNORE_SENHA = "ignore-senha"
    DENIAL_REVEALS_FACTOR = "denial-reveals-factor"
    STATUS_STRING_CHANGED = "status-string-changed"
    CAMPAIGN_CHECK_SKIPPED = "campaign-check-skipped"
    DENIED_INSERT_SIDE_EFFECT = "denied-insert-side-effect"
    FIELD_TRUNCATED_200 = "field-truncated-200"
    ACCENTS_MANGLED = "accents-mangled"
    LONG_FIELD_500 = "long-field-500"
    KEYS_DISAGREE = "keys-disagree"
    MISSING_COLUMN = "missing-column"
    FRESH_NOT_AGUARDANDO = "fresh-not-aguardando"
    STATUS_LOWERCASE = "status-lowercase"
    TENTATIVAS_OVER_5 = "tentativas-over-5"
    DETAIL_SHORT_DURATION = "detail-short-duration"
    DETAIL_WRONG_UNIQUEID = "detail-wrong-uniqueid"
    DETAIL_WRONG_MAILING = "detail-wrong-mailing"
    DELETE_COUNT_WRONG = "delete-count-wrong"
    DELETE_LEAVES_ROWS = "delete-leaves-rows"
    REPORT_501_ROWS = "report-501-rows"
    REPORT_BEFORE_DATAINICIAL = "report-before-datainicial"
    REPORT_EMPTY_DATE_ALL = "report-empty-date-all"
    REPORT_BAD_DATE_500 = "report-bad-date-500"
    OPS_EMPTY = "ops-empty"
    RECORDING_SIZE_MISMATCH = "recording-size-mismatch"
    RECORDING_NOT_GSM = "recording-not-gsm"
    RECORDING_MISSING = "recording-missing"
    C2C_BAD_ID = "c2c-bad-id"
    C2C_WRONG_STATUS = "c2c-wrong-status"
    C2C_NO_RECORD = "c2c-no-record"
    RAMAIS_MISSING_FIELD = "ramais-missing-field"
    CLASSE5_NOOP = "classe5-noop"
    SERVER_ERROR_ON_BAD_JSON = "server-error-on-bad-json"
    CLASSE5_IGNORES_TOKEN = "classe5-ignores-token"
    CLASSE5_IGNORES_SOURCE_IP = "classe5-ignores-source-ip"
    DENIED_DELETE_SIDE_EFFECT = "denied-delete-side-effect"
    DENIED_CLASSE5_SIDE_EFFECT = "denied-classe5-side-effect"
    DENIED_C2C_SIDE_EFFECT = "denied-c2c-side-effect"
    SLOW_API = "slow-api"
    # SIP (central/sip/faults.py)
    REGISTER_NO_CHALLENGE = "register-no-challenge"
    CHALLENGE_NO_QOP = "challenge-no-qop"
    UNKNOWN_EXT_404 = "unknown-ext-404"
    WRONG_PASSWORD_ACCEPTED = "wrong-password-accepted"
    EXPIRES_IGNORED = "expires-ignored"
    NONCE_REPLAY_ACCEPTED = "nonce-replay-accepted"
    INVITE_NO_CHALLENGE = "invite-no-challenge"
    INVITE_NO_183 = "invite-no-183"
    BYE_NOT_ANSWERED = "bye-not-answered"
    RTP_PORT_OUT_OF_RANGE = "rtp-port-out-of-range"
    CODEC_NOT_OFFERED = "codec-not-offered"
    NO_PORT_COLLISION = "no-port-collision"
    WS_OPEN_TO_ALL = "ws-open-to-all"
    C2C_NO_RING = "c2c-no-ring"
    RAMAIS_NO_SIP = "ramais-no-sip"
    CLASSE5_SIP_NOT_BLOCKED = "classe5-sip-not-blocked"
    CRASH_ON_TORTURE = "crash-on-torture"


@dataclass(frozen=True)
class FaultSwitch:
    """One fault: its name, the clauses it must turn red (none for a performance fault), what it does."""

    name: Fault
    clauses: tuple[ClauseId, ...]
    description: str


HTTP_FAULTS: dict[Fault, FaultSwitch] = {
    f.name: f
    for f in (
        FaultSwitch(
            Fault.PLAIN_HTTP_ACCEPTED, (ClauseId.AUTH_4,), "the plain-HTTP port serves the API like the HTTPS one"
        ),
        # the source IP is AUTH-2's fourth factor, but the suites charge a foreign-IP call to AUTH-3 (one token, one IP)
        FaultSwitch(Fault.IGNORE_SOURCE_IP, (ClauseId.AUTH_3,), "the source IP bound to the token is not checked"),
        # login+senha then match the foreign instance too, so the main credentials pass from its IP (AUTH-3)
        FaultSwitch(
            Fault.IGNORE_TOKEN, (ClauseId.AUTH_2, ClauseId.AUTH_3), "the token is not checked (login and senha suffice)"
        ),
        FaultSwitch(Fault.IGNORE_SENHA, (ClauseId.AUTH_2,), "the senha is not checked"),
        FaultSwitch(
            Fault.DENIAL_REVEALS_FACTOR,
            (ClauseId.AUTH_2, ClauseId.AUTH_6),
            "each wrong factor gets its own denial string (a wrong login is not Login/Senha Invalido; enumeration)",
        ),
        FaultSwitch(
            Fault.STATUS_STRING_CHANGED, (ClauseId.DIAL_INS_1,), 'insert answers ["Status","Ok"] instead of "OK"'
        ),
        FaultSwitch(
            Fault.CAMPAIGN_CHECK_SKIPPED,
            (ClauseId.DIAL_INS_2,),
            "an unknown idcampanha is answered OK and the contact inserted",
        ),
        FaultSwitch(
            Fault.DENIED_INSERT_SIDE_EFFECT,
            (ClauseId.AUTH_5, ClauseId.DIAL_INS_3),
            "a denied insert is carried out, then the denial is answered",
        ),
        FaultSwitch(Fault.FIELD_TRUNCATED_200, (ClauseId.DIAL_INS_4,), "insert values are cut at 200 characters"),
        FaultSwitch(
            Fault.ACCENTS_MANGLED,
            (ClauseId.DIAL_INS_4,),
            "insert values are stored Latin-1 double-encoded (Ã\u0081 for Á)",
        ),
        FaultSwitch(
            Fault.LONG_FIELD_500, (ClauseId.DIAL_INS_4,), "an insert value of 255+ characters gets an HTTP 500"
        ),
        FaultSwitch(
            Fault.KEYS_DISAGREE,
            (ClauseId.DIAL_ST_1,),
            "position 52 carries data_insert as dd/mm/YYYY, its name YYYY-mm-dd",
        ),
        FaultSwitch(
            Fault.MISSING_COLUMN, (ClauseId.DIAL_ST_1,), "statusdiscador records lack the cuje column (both keys)"
        ),
        FaultSwitch(Fault.FRESH_NOT_AGUARDANDO, (ClauseId.DIAL_ST_2,), "a fresh contact is listed as Dialing at once"),
        FaultSwitch(
            Fault.STATUS_LOWERCASE, (ClauseId.DIAL_ST_3,), 'status values in lower case ("aguardando", "concluido")'
        ),
        FaultSwitch(Fault.TENTATIVAS_OVER_5, (ClauseId.DIAL_ST_3,), "EXCEDIDO contacts show tentativas 6"),
        FaultSwitch(
            Fault.DETAIL_SHORT_DURATION,
            (ClauseId.DIAL_DET_1,),
            "statusdetalhado gives duracao ≤ 10 for a CONCLUIDO call",
        ),
        FaultSwitch(
            Fault.DETAIL_WRONG_UNIQUEID, (ClauseId.DIAL_DET_1,), "statusdetalhado uniqueid is not <epoch>.<seq>"
        ),
        FaultSwitch(
            Fault.DETAIL_WRONG_MAILING, (ClauseId.DIAL_DET_1,), "statusdetalhado id_mailing does not echo idmailing"
        ),
        FaultSwitch(
            Fault.DELETE_COUNT_WRONG,
            (ClauseId.DIAL_DEL_1,),
            "deletediscador answers one more than it deleted (0 becomes 1)",
        ),
        FaultSwitch(
            Fault.DELETE_LEAVES_ROWS, (ClauseId.DIAL_DEL_1,), "deletediscador leaves AGUARDANDO contacts behind"
        ),
        FaultSwitch(Fault.REPORT_501_ROWS, (ClauseId.REP_1,), "statusreport returns up to 501 records"),
        FaultSwitch(
            Fault.REPORT_BEFORE_DATAINICIAL, (ClauseId.REP_1,), "statusreport includes the day before datainicial"
        ),
        FaultSwitch(
            Fault.REPORT_EMPTY_DATE_ALL,
            (ClauseId.REP_2,),
            "an empty datainicial returns the oldest records, not today's",
        ),
        FaultSwitch(Fault.REPORT_BAD_DATE_500, (ClauseId.REP_2,), "a malformed datainicial gets an HTTP 500"),
        FaultSwitch(Fault.OPS_EMPTY, (ClauseId.OPS_1,), "statusoperacoes answers []"),
        FaultSwitch(
            Fault.RECORDING_SIZE_MISMATCH, (ClauseId.REC_1,), "recordings are one frame shorter than tamanho_gravacao"
        ),
        FaultSwitch(
            Fault.RECORDING_NOT_GSM, (ClauseId.REC_1,), "recordings are served as WAV-looking bytes, not GSM frames"
        ),
        FaultSwitch(Fault.RECORDING_MISSING, (ClauseId.REC_1,), "recordings answer 404"),
        FaultSwitch(Fault.C2C_BAD_ID, (ClauseId.C2C_1,), "clicktocall ID lacks the timestamp part (<origem>_<digits>)"),
        FaultSwitch(
            Fault.C2C_WRONG_STATUS, (ClauseId.C2C_1,), 'clicktocall answers "CHAMADA EFETUADA" instead of "CHAMADA OK"'
        ),
        FaultSwitch(Fault.C2C_NO_RECORD, (ClauseId.C2C_3,), "a clicktocall leaves no call record with its ID"),
        FaultSwitch(Fault.RAMAIS_MISSING_FIELD, (ClauseId.RAM_1,), "statusramais objects lack IDCHAMADA"),
        FaultSwitch(Fault.CLASSE5_NOOP, (ClauseId.C5_1,), "bloqueioclasse5 answers but blocks nothing"),
        FaultSwitch(
            Fault.SERVER_ERROR_ON_BAD_JSON, (ClauseId.AUTH_1,), "a malformed body gets an HTTP 500 with a PHP error"
        ),
        # issue 9 (5): denials judged by effect, per acao
        # login+senha also match the foreign instance, so our token passes from its IP too (AUTH-3)
        FaultSwitch(
            Fault.CLASSE5_IGNORES_TOKEN,
            (ClauseId.AUTH_2, ClauseId.AUTH_3),
            "bloqueioclasse5 (only) accepts a wrong token when login and senha are right",
        ),
        FaultSwitch(
            Fault.CLASSE5_IGNORES_SOURCE_IP,
            (ClauseId.AUTH_3,),
            "bloqueioclasse5 (only) accepts the right token from a source IP it is not bound to",
        ),
        FaultSwitch(
            Fault.DENIED_DELETE_SIDE_EFFECT,
            (ClauseId.AUTH_5,),
            "a denied deletediscador still deletes the campaign's contacts, then answers the denial",
        ),
        FaultSwitch(
            Fault.DENIED_CLASSE5_SIDE_EFFECT,
            (ClauseId.AUTH_5,),
            "a denied bloqueioclasse5 still sets the client's block state, then answers the denial",
        ),
        FaultSwitch(
            Fault.DENIED_C2C_SIDE_EFFECT,
            (ClauseId.AUTH_5,),
            "a denied clicktocall still places the call, then answers the denial",
        ),
    )
}


# Not a contract clause: performance only (issue 11). Kept apart from HTTP_FAULTS, whose every fault
# must turn a clause red; `pbxcheck load --baseline` is what goes red against these.
PERF_FAULTS: dict[Fault, FaultSwitch] = {
    f.name: f
    for f in (
        FaultSwitch(Fault.SLOW_API, (), "every API answer is delayed by a fixed 50 ms (load regression detection)"),
    )
}
SLOW_API_DELAY = 0.050  # seconds added to every answer under slow-api


def _sip_faults() -> dict[Fault, FaultSwitch]:
    """The SIP side declares its own switches (``central/sip/faults.py``); each must be a Fault member."""
    return {
        Fault(name): FaultSwitch(Fault(name), tuple(ClauseId(c) for c in clauses), description)
        for name, clauses, description in SIP_FAULTS
    }


FAULTS: dict[Fault, FaultSwitch] = {**HTTP_FAULTS, **PERF_FAULTS, **_sip_faults()}


def validate(names: Iterable[str]) -> frozenset[Fault]:
    """The names as a set of :class:`Fault`; ValueError naming the first unknown one."""
    out: set[Fault] = set()
    for name in names:
        try:
            out.add(Fault(name))
        except ValueError:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(Fault))}") from None
    return frozenset(out)
