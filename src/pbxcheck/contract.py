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
    "endereco", "bairro", "cidade", "estado", "cep", "contato", "agente", "dpto", "conta",
    *(f"gen{i}" for i in range(1, 23)),
)
INSERT_FIELDS: tuple[str, ...] = (
    "idcrm", "cliente", "cpf",
    *(f for i in range(1, MAX_PHONES + 1) for f in (f"ddd{i}", f"tel{i}")),
    *OPEN_TEXT_FIELDS,
)

# The 53 columns of a statusdiscador record, in position order 0..52.
CONTACT_COLUMNS: tuple[str, ...] = (
    "id", "cliente", "ddd", "numero", "endereco", "bairro", "cidade", "estado", "cep", "contato",
    "status", "agendamento", "inicialing", "ocorrencia", "datendimento", "obs", "agente", "dpto",
    "campanha", "tentativas", "conta", "cuje", "bina", "status_ligacao",
    *(f"gen{i}" for i in range(1, 23)),
    "tab1", "tab2", "tab3", "cob", "id_registro", "tipo_de_chamada", "data_insert",
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
    "id", "conta", "nomeoperador", "ramal", "tipo", "chamada", "datahora", "duracao", "numero",
    "tempofila", "abandonoramal", "abandonofila", "naoatendidas", "statuschamada", "grupo",
    "aguardouatendimento", "uniqueid", "gravacao", "ip", "backup", "caminho", "time", "dac_aut",
    "nota_atendimento", "t_chamando", "dialed_time", "tempo_pausa", "tempo_logado", "setor_nome",
    "sidehangup", "cliente", "campanha", "id_mailing", "tronco", "codigo_conta", "tipo_chamada",
    "operadora", "call_entrada", "ip_origem", "operadora_cadup", "log", "tarifa", "modulacao",
    "nota_atendimento2", "valor_custo", "valor_cobrado", "protocolo", "tag", "tamanho_gravacao",
    "v5", "ura", "ftp", "enlace",
)
# DIAL-DET-1: the fields a check insists on.
DETAIL_REQUIRED: tuple[str, ...] = (
    "id", "conta", "nomeoperador", "ramal", "tipo", "chamada", "datahora", "duracao", "numero",
    "statuschamada", "grupo", "uniqueid", "gravacao", "sidehangup", "campanha", "id_mailing",
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
    "Ramal", "Status", "Direcao", "Duracao", "StatusCanal", "Callerid", "Extension",
    "JSON1", "JSON2", "JSON3", "GRAVACAO", "IDCHAMADA",
)
RAMAL_IN_USE = "In use"
CANAL_UP = "Up"
DIRECAO_ENTRADA = "ENTRADA"
DIRECAO_SAIDA = "SAIDA"

# --- Recordings (REC-1) --------------------------------------------------------------------------

GSM_FRAME_BYTES = 33  # GSM 06.10 full-rate frame, 20 ms of audio
GSM_FRAMES_PER_SECOND = 50

# --- Clauses -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    id: str
    section: str  # the document's section title, used as the Allure epic
    summary: str
    unspecified: bool = False  # CLAUSES.md marks it [unspecified]: observed answers are recorded
    hardening: bool = False  # beyond the document: findings with a severity, not failures
    sip: bool = False  # needs the SIP side


_A = "Utilizando API / Acessando API - https"
_D = "Discador"
_R = "Chamadas, Callcenter, Gravações"
_C = "Click to Call"
_S = "Sincronismo de Tela"
_5 = "Bloqueio/Desbloqueio Cliente Classe5"
_P = "Registro de Ramais / Efetuando Chamadas / WebRTC"

CLAUSES: dict[str, Clause] = {c.id: c for c in (
    Clause("AUTH-1", _A, "HTTPS POST /api.php with a JSON object carrying acao, login, senha, token"),
    Clause("AUTH-2", _A, "login, senha, token and source IP checked on every call; any one wrong denies", unspecified=True),
    Clause("AUTH-3", _A, "one token is bound to exactly one source IP"),
    Clause("AUTH-4", _A, 'plain http answers ["Status","Erro de Protocolo"] for every acao, nothing else'),
    Clause("AUTH-5", _A, "a denied call has no side effect"),
    Clause("AUTH-6", _A, "denials do not enumerate factors; repeated failures are throttled", hardening=True),
    Clause("DIAL-INS-1", _D, 'insert answers ["Status","OK"]'),
    Clause("DIAL-INS-2", _D, 'unknown idcampanha answers ["Status","ID CAMPANHA NAO CADASTRADO"], inserts nothing'),
    Clause("DIAL-INS-3", _D, 'bad credentials on insert answer ["Status","Login/Senha Invalido"], insert nothing'),
    Clause("DIAL-INS-4", _D, "contact fields up to 254 characters come back intact", unspecified=True),
    Clause("DIAL-ST-1", _D, "statusdiscador lists records with 53 columns under position and name, equal"),
    Clause("DIAL-ST-2", _D, "a fresh contact is listed as inserted with status AGUARDANDO"),
    Clause("DIAL-ST-3", _D, "status domain; tentativas <= 5; EXCEDIDO implies 5"),
    Clause("DIAL-DET-1", _D, "statusdetalhado of a CONCLUIDO contact gives the call detail"),
    Clause("DIAL-DEL-1", _D, 'deletediscador answers ["Total Deletados","N"], N exact, then empty, then 0'),
    Clause("REP-1", _R, "statusreport: records at or after datainicial, at most 500"),
    Clause("REP-2", _R, "empty datainicial means today; malformed date no 500, no full dump", unspecified=True),
    Clause("OPS-1", _R, "statusoperacoes: login, logout and pause events since datainicial"),
    Clause("REC-1", _R, "GET /gravador28/<gravacao>.gsm: GSM 06.10, size = tamanho_gravacao"),
    Clause("REC-2", _R, "recording downloadable without credentials (finding)", hardening=True),
    Clause("C2C-1", _C, 'clicktocall answers ["Status","CHAMADA OK","ID","<origem>_<YYYYmmddHHMMSS>_<digits>"]'),
    Clause("C2C-2", _C, "the origin extension rings; answered, the call to destino completes", sip=True),
    Clause("C2C-3", _C, "the returned ID can be looked up with the call's details", unspecified=True),
    Clause("RAM-1", _S, "statusramais: one object per extension with the 12 fields"),
    Clause("RAM-2", _S, "2001 talking to 2002: In use, Up, opposite Direcao, same IDCHAMADA", sip=True),
    Clause("RAM-3", _S, "JSON1..3 set during the call; GRAVACAO downloadable after", sip=True),
    Clause("C5-1", _5, "BLOQUEAR blocks the client's extensions; DESBLOQUEAR lifts it", unspecified=True),
    Clause("SIP-REG-1", _P, "REGISTER on 7048 UDP/TCP: 401 digest challenge, then 200", sip=True),
    Clause("SIP-REG-2", _P, "wrong password never 200; unknown extension answered like a wrong password", sip=True),
    Clause("SIP-REG-3", _P, "binding honours Expires; Expires 0 removes it", sip=True),
    Clause("SIP-INV-1", _P, "INVITE: 401, ACK, INVITE+auth, 100, 183 SDP, 200 SDP, ACK; BYE 200", sip=True),
    Clause("SIP-INV-2", _P, "codecs 18/0/8/3 + telephone-event; RTP port in 10000-20000", sip=True),
    Clause("SIP-NAT-1", _P, "same public IP and source port collide; different IPs do not", sip=True, unspecified=True),
    Clause("SIP-WS-1", _P, "SIP over WS/WSS 8089 /ws, subprotocol sip, only with ramal-web", sip=True),
    Clause("SIP-SEC-1", _P, "replays, wrong nc, brute force, torture messages: no entry, no crash", sip=True, hardening=True),
)}

HTTP_CLAUSES = tuple(c.id for c in CLAUSES.values() if not c.sip)
SIP_CLAUSES = tuple(c.id for c in CLAUSES.values() if c.sip)


def clause(clause_id: str) -> Clause:
    """The clause named ``clause_id``; a KeyError names the unknown ID."""
    try:
        return CLAUSES[clause_id]
    except KeyError:
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
