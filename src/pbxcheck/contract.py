"""The contract, declared once.

Every field name, every answer string and every clause ID that the reference central serves and the
suites check lives here, so that the central and the checks cannot drift apart. The source is the
vendor's "API INTEGRAÇÃO" document (v5.0.3.1, API v1.2), cut into clauses in
``shared/spec/CLAUSES.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# --- Endpoints ----------------------------------------------------------------------------------

API_PATH = "/api.php"
RECORDINGS_PATH = "/gravador28/"  # + <gravacao>.gsm
SIP_PORT = 7048
SIP_WS_PORT = 8089
SIP_WS_PATH = "/ws"
SIP_REALM = "xhand"  # the realm in the document's Authorization example
RTP_PORT_RANGE = (10000, 20000)

# --- acao values ("Utilizando API", every section) -----------------------------------------------


class Acao(StrEnum):
    INSERT = "insert"
    STATUSDISCADOR = "statusdiscador"
    STATUSDETALHADO = "statusdetalhado"
    STATUSREPORT = "statusreport"
    STATUSOPERACOES = "statusoperacoes"
    DELETEDISCADOR = "deletediscador"
    CLICKTOCALL = "clicktocall"
    STATUSRAMAIS = "statusramais"
    BLOQUEIOCLASSE5 = "bloqueioclasse5"


AUTH_FIELDS = ("login", "senha", "token")

# Fields each acao needs beyond acao + AUTH_FIELDS.
REQUIRED_FIELDS: dict[Acao, tuple[str, ...]] = {
    Acao.INSERT: ("idcampanha",),
    Acao.STATUSDISCADOR: ("idcampanha",),
    Acao.STATUSDETALHADO: ("idcampanha", "idmailing"),
    Acao.STATUSREPORT: (),  # datainicial: empty or absent means today (REP-2)
    Acao.STATUSOPERACOES: (),
    Acao.DELETEDISCADOR: ("idcampanha",),
    Acao.CLICKTOCALL: ("origem", "destino"),
    Acao.STATUSRAMAIS: (),
    Acao.BLOQUEIOCLASSE5: ("logincliente", "classe5acao"),
}

# --- Answer strings (exactly as the document spells them) ----------------------------------------

STATUS = "Status"
OK = "OK"
ERRO_PROTOCOLO = "Erro de Protocolo"  # AUTH-4
LOGIN_INVALIDO = "Login/Senha Invalido"  # AUTH-2, DIAL-INS-3
CAMPANHA_NAO_CADASTRADA = "ID CAMPANHA NAO CADASTRADO"  # DIAL-INS-2
TOTAL_DELETADOS = "Total Deletados"  # DIAL-DEL-1
CHAMADA_OK = "CHAMADA OK"  # C2C-1
ID = "ID"

CLASSE5_BLOQUEAR = "BLOQUEAR"
CLASSE5_DESBLOQUEAR = "DESBLOQUEAR"

# --- Dialer (DIAL-INS-4, DIAL-ST-1, DIAL-ST-3) ---------------------------------------------------

MAX_PHONES = 5
MAX_TEXT = 254
OPEN_TEXT_FIELDS: tuple[str, ...] = (
    "endereco",
    "bairro",
    "cidade",
    "estado",
    "cep",
    "contato",
    "agente",
    "dpto",
    "conta",
    *(f"gen{i}" for i in range(1, 23)),
)
INSERT_FIELDS: tuple[str, ...] = (
    "idcrm",
    "cliente",
    "cpf",
    *(f for i in range(1, MAX_PHONES + 1) for f in (f"ddd{i}", f"tel{i}")),
    *OPEN_TEXT_FIELDS,
)

# The 53 columns of a statusdiscador record, in position order 0..52.
CONTACT_COLUMNS: tuple[str, ...] = (
    "id",
    "cliente",
    "ddd",
    "numero",
    "endereco",
    "bairro",
    "cidade",
    "estado",
    "cep",
    "contato",
    "status",
    "agendamento",
    "inicialing",
    "ocorrencia",
    "datendimento",
    "obs",
    "agente",
    "dpto",
    "campanha",
    "tentativas",
    "conta",
    "cuje",
    "bina",
    "status_ligacao",
    *(f"gen{i}" for i in range(1, 23)),
    "tab1",
    "tab2",
    "tab3",
    "cob",
    "id_registro",
    "tipo_de_chamada",
    "data_insert",
)
assert len(CONTACT_COLUMNS) == 53


class ContactStatus(StrEnum):
    AGUARDANDO = "AGUARDANDO"  # not dialled yet
    DIALING = "Dialing"  # being dialled
    DESCARTADO = "Descartado"  # tried, not answered
    CONCLUIDO = "CONCLUIDO"  # a conversation of more than 10 s
    EXCEDIDO = "EXCEDIDO"  # tried 5 times


MAX_TRIES = 5
CONCLUIDO_MIN_TALK_S = 10

# statusdetalhado: the document's example object, key order kept.
DETAIL_FIELDS: tuple[str, ...] = (
    "id",
    "conta",
    "nomeoperador",
    "ramal",
    "tipo",
    "chamada",
    "datahora",
    "duracao",
    "numero",
    "tempofila",
    "abandonoramal",
    "abandonofila",
    "naoatendidas",
    "statuschamada",
    "grupo",
    "aguardouatendimento",
    "uniqueid",
    "gravacao",
    "ip",
    "backup",
    "caminho",
    "time",
    "dac_aut",
    "nota_atendimento",
    "t_chamando",
    "dialed_time",
    "tempo_pausa",
    "tempo_logado",
    "setor_nome",
    "sidehangup",
    "cliente",
    "campanha",
    "id_mailing",
    "tronco",
    "codigo_conta",
    "tipo_chamada",
    "operadora",
    "call_entrada",
    "ip_origem",
    "operadora_cadup",
    "log",
    "tarifa",
    "modulacao",
    "nota_atendimento2",
    "valor_custo",
    "valor_cobrado",
    "protocolo",
    "tag",
    "tamanho_gravacao",
    "v5",
    "ura",
    "ftp",
    "enlace",
)
# DIAL-DET-1: the fields a check insists on.
DETAIL_REQUIRED: tuple[str, ...] = (
    "id",
    "conta",
    "nomeoperador",
    "ramal",
    "tipo",
    "chamada",
    "datahora",
    "duracao",
    "numero",
    "statuschamada",
    "grupo",
    "uniqueid",
    "gravacao",
    "sidehangup",
    "campanha",
    "id_mailing",
    "tamanho_gravacao",
)
# statusreport rows are call records of the same shape as statusdetalhado.
REPORT_FIELDS = DETAIL_FIELDS
REPORT_MAX_ROWS = 500
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # "YYYY-MM-DD HH:ii:ss"

# statusoperacoes: the document gives no field list; the reference central uses these.
OPERATION_FIELDS: tuple[str, ...] = ("id", "datahora", "operador", "ramal", "evento", "pausa", "duracao")
OPERATION_EVENTS = ("LOGIN", "LOGOUT", "PAUSA")

# --- Screen sync (RAM-1) -------------------------------------------------------------------------

RAMAL_FIELDS: tuple[str, ...] = (
    "Ramal",
    "Status",
    "Direcao",
    "Duracao",
    "StatusCanal",
    "Callerid",
    "Extension",
    "JSON1",
    "JSON2",
    "JSON3",
    "GRAVACAO",
    "IDCHAMADA",
)
RAMAL_IN_USE = "In use"
CANAL_UP = "Up"
DIRECAO_ENTRADA = "ENTRADA"
DIRECAO_SAIDA = "SAIDA"

# --- Recordings (REC-1) --------------------------------------------------------------------------

GSM_FRAME_BYTES = 33  # GSM 06.10 full-rate frame, 20 ms of audio
GSM_FRAMES_PER_SECOND = 50

# --- Clauses -------------------------------------------------------------------------------------


class ClauseId(StrEnum):
    """Every clause ID the checks verify (the server-side rows of CLAUSES.md): ``ClauseId.AUTH_1`` is
    ``"AUTH-1"``, so mypy catches a typo that a string literal would only reveal as a KeyError at
    failure time. The members are the keys of :data:`CLAUSES` and, for the client side (CL-*), of
    :data:`CLIENT_CLAUSES` (tests/unit check both ways, and against CLAUSES.md when the spec is beside the tree)."""

    AUTH_1 = "AUTH-1"
    AUTH_2 = "AUTH-2"
    AUTH_3 = "AUTH-3"
    AUTH_4 = "AUTH-4"
    AUTH_5 = "AUTH-5"
    AUTH_6 = "AUTH-6"
    DIAL_INS_1 = "DIAL-INS-1"
    DIAL_INS_2 = "DIAL-INS-2"
    DIAL_INS_3 = "DIAL-INS-3"
    DIAL_INS_4 = "DIAL-INS-4"
    DIAL_ST_1 = "DIAL-ST-1"
    DIAL_ST_2 = "DIAL-ST-2"
    DIAL_ST_3 = "DIAL-ST-3"
    DIAL_DET_1 = "DIAL-DET-1"
    DIAL_DEL_1 = "DIAL-DEL-1"
    REP_1 = "REP-1"
    REP_2 = "REP-2"
    OPS_1 = "OPS-1"
    REC_1 = "REC-1"
    REC_2 = "REC-2"
    C2C_1 = "C2C-1"
    C2C_2 = "C2C-2"
    C2C_3 = "C2C-3"
    RAM_1 = "RAM-1"
    RAM_2 = "RAM-2"
    RAM_3 = "RAM-3"
    C5_1 = "C5-1"
    SIP_REG_1 = "SIP-REG-1"
    SIP_REG_2 = "SIP-REG-2"
    SIP_REG_3 = "SIP-REG-3"
    SIP_INV_1 = "SIP-INV-1"
    SIP_INV_2 = "SIP-INV-2"
    SIP_NAT_1 = "SIP-NAT-1"
    SIP_WS_1 = "SIP-WS-1"
    SIP_SEC_1 = "SIP-SEC-1"
    # The client side (CLAUSES.md "Client side"): the keys of CLIENT_CLAUSES, judged by `pbxcheck
    # audit` only, so they are kept out of CLAUSES (a server run neither checks nor lists them).
    CL_TLS_1 = "CL-TLS-1"
    CL_TLS_2 = "CL-TLS-2"
    CL_REQ_1 = "CL-REQ-1"
    CL_REQ_2 = "CL-REQ-2"
    CL_REQ_3 = "CL-REQ-3"
    CL_REP_1 = "CL-REP-1"
    CL_ERR_1 = "CL-ERR-1"


class ClauseKind(StrEnum):
    """What a clause's failure means (and its Allure severity)."""

    AUTH = "auth"  # access control: blocker
    CONTRACT = "contract"  # what the document states: critical
    UNSPECIFIED = "unspecified"  # the document is silent or contradicts itself: observed, pinnable
    HARDENING = "hardening"  # beyond the document: findings with a severity


@dataclass(frozen=True)
class Clause:
    id: ClauseId
    section: str  # the document's section title, used as the Allure epic
    summary: str
    unspecified: bool = False  # CLAUSES.md marks it [unspecified]: observed answers are recorded
    hardening: bool = False  # beyond the document: findings with a severity, not failures
    sip: bool = False  # needs the SIP side

    @property
    def kind(self) -> ClauseKind:
        if self.hardening:
            return ClauseKind.HARDENING
        if self.unspecified:
            return ClauseKind.UNSPECIFIED
        return ClauseKind.AUTH if self.id.startswith("AUTH-") else ClauseKind.CONTRACT


_A = "Utilizando API / Acessando API - https"
_D = "Discador"
_R = "Chamadas, Callcenter, Gravações"
_C = "Click to Call"
_S = "Sincronismo de Tela"
_5 = "Bloqueio/Desbloqueio Cliente Classe5"
_P = "Registro de Ramais / Efetuando Chamadas / WebRTC"

CLAUSES: dict[str, Clause] = {
    c.id: c
    for c in (  # keyed by ClauseId members (equal to their str)
        Clause(ClauseId.AUTH_1, _A, "HTTPS POST /api.php with a JSON object carrying acao, login, senha, token"),
        Clause(
            ClauseId.AUTH_2,
            _A,
            "login, senha, token and source IP checked on every call; any one wrong denies",
            unspecified=True,
        ),
        Clause(ClauseId.AUTH_3, _A, "one token is bound to exactly one source IP"),
        Clause(ClauseId.AUTH_4, _A, 'plain http answers ["Status","Erro de Protocolo"] for every acao, nothing else'),
        Clause(ClauseId.AUTH_5, _A, "a denied call has no side effect"),
        Clause(
            ClauseId.AUTH_6, _A, "denials do not enumerate factors; repeated failures are throttled", hardening=True
        ),
        Clause(ClauseId.DIAL_INS_1, _D, 'insert answers ["Status","OK"]'),
        Clause(
            ClauseId.DIAL_INS_2,
            _D,
            'unknown idcampanha answers ["Status","ID CAMPANHA NAO CADASTRADO"], inserts nothing',
        ),
        Clause(
            ClauseId.DIAL_INS_3,
            _D,
            'bad credentials on insert answer ["Status","Login/Senha Invalido"], insert nothing',
        ),
        Clause(ClauseId.DIAL_INS_4, _D, "contact fields up to 254 characters come back intact", unspecified=True),
        Clause(ClauseId.DIAL_ST_1, _D, "statusdiscador lists records with 53 columns under position and name, equal"),
        Clause(ClauseId.DIAL_ST_2, _D, "a fresh contact is listed as inserted with status AGUARDANDO"),
        Clause(ClauseId.DIAL_ST_3, _D, "status domain; tentativas <= 5; EXCEDIDO implies 5"),
        Clause(ClauseId.DIAL_DET_1, _D, "statusdetalhado of a CONCLUIDO contact gives the call detail"),
        Clause(ClauseId.DIAL_DEL_1, _D, 'deletediscador answers ["Total Deletados","N"], N exact, then empty, then 0'),
        Clause(ClauseId.REP_1, _R, "statusreport: records at or after datainicial, at most 500"),
        Clause(
            ClauseId.REP_2, _R, "empty datainicial means today; malformed date no 500, no full dump", unspecified=True
        ),
        Clause(ClauseId.OPS_1, _R, "statusoperacoes: login, logout and pause events since datainicial"),
        Clause(ClauseId.REC_1, _R, "GET /gravador28/<gravacao>.gsm: GSM 06.10, size = tamanho_gravacao"),
        Clause(ClauseId.REC_2, _R, "recording downloadable without credentials (finding)", hardening=True),
        Clause(
            ClauseId.C2C_1, _C, 'clicktocall answers ["Status","CHAMADA OK","ID","<origem>_<YYYYmmddHHMMSS>_<digits>"]'
        ),
        Clause(ClauseId.C2C_2, _C, "the origin extension rings; answered, the call to destino completes", sip=True),
        Clause(ClauseId.C2C_3, _C, "the returned ID can be looked up with the call's details", unspecified=True),
        Clause(ClauseId.RAM_1, _S, "statusramais: one object per extension with the 12 fields"),
        Clause(ClauseId.RAM_2, _S, "2001 talking to 2002: In use, Up, opposite Direcao, same IDCHAMADA", sip=True),
        Clause(ClauseId.RAM_3, _S, "JSON1..3 set during the call; GRAVACAO downloadable after", sip=True),
        Clause(ClauseId.C5_1, _5, "BLOQUEAR blocks the client's extensions; DESBLOQUEAR lifts it", unspecified=True),
        Clause(ClauseId.SIP_REG_1, _P, "REGISTER on 7048 UDP/TCP: 401 digest challenge, then 200", sip=True),
        Clause(
            ClauseId.SIP_REG_2,
            _P,
            "wrong password never 200; unknown extension answered like a wrong password",
            sip=True,
        ),
        Clause(ClauseId.SIP_REG_3, _P, "binding honours Expires; Expires 0 removes it", sip=True),
        Clause(ClauseId.SIP_INV_1, _P, "INVITE: 401, ACK, INVITE+auth, 100, 183 SDP, 200 SDP, ACK; BYE 200", sip=True),
        Clause(ClauseId.SIP_INV_2, _P, "codecs 18/0/8/3 + telephone-event; RTP port in 10000-20000", sip=True),
        Clause(
            ClauseId.SIP_NAT_1,
            _P,
            "same public IP and source port collide; different IPs do not",
            sip=True,
            unspecified=True,
        ),
        Clause(ClauseId.SIP_WS_1, _P, "SIP over WS/WSS 8089 /ws, subprotocol sip, only with ramal-web", sip=True),
        Clause(
            ClauseId.SIP_SEC_1,
            _P,
            "replays, wrong nc, brute force, torture messages: no entry, no crash",
            sip=True,
            hardening=True,
        ),
    )
}

HTTP_CLAUSES = tuple(c.id for c in CLAUSES.values() if not c.sip)
SIP_CLAUSES = tuple(c.id for c in CLAUSES.values() if c.sip)

_CL = "Client side (judged by pbxcheck audit)"
_CLIENT = (
    Clause(ClauseId.CL_TLS_1, _CL, "calls the API over HTTPS only, never over plain http"),
    Clause(ClauseId.CL_TLS_2, _CL, "sends nothing to a server whose certificate API_CA did not sign", hardening=True),
    Clause(
        ClauseId.CL_REQ_1, _CL, "POST /api.php, one JSON object with acao, login, senha, token; credentials only there"
    ),
    Clause(ClauseId.CL_REQ_2, _CL, "each acao's fields as the contract names them; strings <= 254; DDD apart; dates"),
    Clause(ClauseId.CL_REQ_3, _CL, "the body is valid UTF-8 JSON (no typographic quotes, AMB-5)"),
    Clause(
        ClauseId.CL_REP_1, _CL, "500 records from statusreport/statusoperacoes: asks again from the last one's instant"
    ),
    Clause(
        ClauseId.CL_ERR_1,
        _CL,
        "a refused call is a failure: no silent loss of an insert, no tight retry loop",
        hardening=True,
    ),
)
CLIENT_CLAUSES: dict[str, Clause] = {c.id: c for c in _CLIENT}  # keyed like CLAUSES; not in it

# SIP-INV-2: the codecs the document's device offers (RTP payload type -> name), in its order, and
# the telephone-event payload type offered with them. The answer must pick from these.
SIP_INV2_CODECS: dict[int, str] = {18: "G729", 0: "PCMU", 8: "PCMA", 3: "GSM"}
TELEPHONE_EVENT_PT = 101


def clause(clause_id: str) -> Clause:
    """The clause named ``clause_id``; a KeyError names the unknown ID."""
    try:
        return CLAUSES[ClauseId(clause_id)]
    except (KeyError, ValueError):
        raise KeyError(f"unknown clause ID {clause_id!r} (see shared/spec/CLAUSES.md)") from None


# --- Reference central's choices for [unspecified] answers (docs/DESIGN.md) ----------------------
# Appended by the central's owner; the suites may pin or accept these.

REQUISICAO_INVALIDA = "Requisicao Invalida"  # malformed body (not JSON, not an object, bad UTF-8, too big)
ACAO_INVALIDA = "Acao Invalida"  # unknown acao, after auth passed
CAMPO_INVALIDO = "Campo Invalido: "  # + field name: missing, wrong type, 255+ characters
DATA_INVALIDA = "Data Invalida"  # statusreport/statusoperacoes malformed datainicial
RAMAL_INVALIDO = "Ramal Invalido"  # clicktocall unknown origem
RAMAL_BLOQUEADO = "Ramal Bloqueado"  # clicktocall origem belongs to a blocked classe5 client
CLASSE5_BLOQUEADO = "BLOQUEADO"
CLASSE5_DESBLOQUEADO = "DESBLOQUEADO"
CLIENTE_NAO_CADASTRADO = "Cliente Nao Cadastrado"
RAMAL_NOT_IN_USE = "Not in use"  # statusramais idle, registered
RAMAL_UNAVAILABLE = "Unavailable"  # statusramais idle, not registered
DATAINICIAL_ALIAS = "inicio"  # AMB-3: the Python example's name for datainicial
ID_CLICKTOCALL = "id_clicktocall"  # C2C-3: extra call-record field carrying the clicktocall ID
MAX_BODY_BYTES = 1 << 20  # larger bodies are answered REQUISICAO_INVALIDA unread

# DIAL-ST-2: insert fields that come back under a statusdiscador column of another name.
# Every other insert field named like a column (cliente, endereco, ..., gen22) comes back under its own name.
INSERT_TO_COLUMN: dict[str, str] = {"ddd1": "ddd", "tel1": "numero"}
ERRO_INTERNO = "Erro Interno"  # the reference central's answer (HTTP 200) if a handler fails unexpectedly


# --- Call-record vocabulary (statuschamada, tipo, sidehangup) --------------------------------------
# Appended by the central's owner (issue 10): the values the reference central writes in a call
# record, so the SIP side, the click-to-call simulation, the dialer and the seed spell them alike.


class StatusChamada(StrEnum):
    """``statuschamada``. The document shows only ``ANSWER`` (statusdetalhado example). It is silent
    on an unanswered call; ``ANSWER`` is Asterisk's DIALSTATUS spelling (its CDR would say
    ``ANSWERED``), whose no-answer value is ``NOANSWER`` (one word, like the contacts'
    ``status_ligacao``), so that is the spelling here, never ``NO ANSWER``."""

    ANSWER = "ANSWER"  # the document's
    NOANSWER = "NOANSWER"  # document silent: Asterisk DIALSTATUS
    BUSY = "BUSY"  # document silent: Asterisk DIALSTATUS


class TipoChamada(StrEnum):
    """``tipo``. The document shows only ``DISCADOR`` (a dialer call); the others are the reference
    central's own names (document silent)."""

    DISCADOR = "DISCADOR"  # the document's
    ENTRADA = "ENTRADA"  # an incoming call
    SAIDA = "SAIDA"  # an outgoing call to an outside number
    RAMAL = "RAMAL"  # extension to extension
    CLICKTOCALL = "CLICKTOCALL"  # placed by acao clicktocall (carries id_clicktocall)


class SideHangup(StrEnum):
    """``sidehangup``: who hung up. The document shows only ``CLIENTE`` (the called party of a dialer
    call); the others are the reference central's own names (document silent)."""

    CLIENTE = "CLIENTE"  # the document's: the customer (far end)
    OPERADOR = "OPERADOR"  # the operator (agent)
    ORIGEM = "ORIGEM"  # the side that placed the call (SIP)
    DESTINO = "DESTINO"  # the side that was called (SIP)


# --- The contract document itself (certificate header; CLAUSES.md names it) ----------------------

CONTRACT_DOCUMENT = "API INTEGRAÇÃO"  # the vendor's document title
CONTRACT_VERSION = "5.0.3.1"  # "Versão 5.0.3.1"
API_VERSION = "v1.2"  # "API: v1.2"
CONTRACT_FILE = "000_beaf368fbdafca5c.txt"  # beside CLAUSES.md in shared/spec
