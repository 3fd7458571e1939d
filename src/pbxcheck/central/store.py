"""The reference central's state: one SQLite file.

One connection, owned by the event-loop thread: every API call is a handful of microsecond-fast
statements, so a thread pool would cost more than it saves. Every API call that writes runs inside
one ``with store.tx():`` block, so nothing is ever half-written. Listings that stream (statusdiscador)
read through a second connection inside their own read transaction, which WAL keeps consistent
while writers go on.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..contract import CONTACT_COLUMNS, DATE_FORMAT, DETAIL_FIELDS, ID_CLICKTOCALL, OPERATION_FIELDS
from . import fragments

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instances(
    token TEXT PRIMARY KEY, login TEXT NOT NULL, senha TEXT NOT NULL, source_ip TEXT NOT NULL,
    role TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns(
    id TEXT PRIMARY KEY, nome TEXT NOT NULL, owner TEXT NOT NULL, disposable INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS contacts(
    id INTEGER PRIMARY KEY, campanha_id TEXT NOT NULL, status TEXT NOT NULL,
    tentativas INTEGER NOT NULL, next_at REAL, numero TEXT NOT NULL, extra TEXT NOT NULL,
    frag BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS contacts_campaign ON contacts(campanha_id, id);
DROP INDEX IF EXISTS contacts_due;
CREATE INDEX IF NOT EXISTS contacts_dialing ON contacts(next_at) WHERE status = 'Dialing';
CREATE TABLE IF NOT EXISTS calls(
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, campanha TEXT, id_mailing TEXT,
    id_clicktocall TEXT, gravacao TEXT, tamanho INTEGER, statuschamada TEXT, rec TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS calls_ts ON calls(ts);
CREATE INDEX IF NOT EXISTS calls_mailing ON calls(campanha, id_mailing);
CREATE INDEX IF NOT EXISTS calls_gravacao ON calls(gravacao);
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, ts REAL NOT NULL, rec TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS classe5(login TEXT PRIMARY KEY, blocked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS extensions(
    number TEXT PRIMARY KEY, password TEXT NOT NULL, ramal_web INTEGER NOT NULL,
    classe5 TEXT REFERENCES classe5(login), nome TEXT NOT NULL DEFAULT '');
"""

LISTING_CHUNK_ROWS = 2000
MMAP_BYTES = 1 << 30


def datahora(ts: float) -> str:
    return time.strftime(DATE_FORMAT, time.localtime(ts))


@dataclass(frozen=True)
class Instance:
    token: str
    login: str
    senha: str
    source_ip: str
    role: str  # "main" or "foreign"


@dataclass(frozen=True)
class Campaign:
    id: str
    nome: str
    owner: str
    disposable: bool


@dataclass(frozen=True)
class ExtensionRow:
    number: str
    password: str
    ramal_web: bool
    classe5: str | None
    nome: str


@dataclass(frozen=True, slots=True)
class SipAccount:
    """What the SIP side needs of an extension, in one query (a REGISTER flood must not cost four)."""

    number: str
    password: str = field(repr=False)
    ramal_web: bool
    blocked: bool  # its classe5 client is blocked (C5-1)


@dataclass(frozen=True)
class DueContact:
    id: int
    campanha_id: str
    status: str
    tentativas: int
    numero: str


class Checkpointer:
    """Moves the WAL into the database file from a thread of its own, every ``interval`` seconds.
    PASSIVE checkpoints never block the writer; what they cannot copy yet waits for the next one.
    A page rewritten by every insert (the last leaf) is copied once per checkpoint, so a longer
    interval copies less; 2 s keeps the WAL to a few tens of MB at thousands of inserts/s."""

    def __init__(self, path: str, interval: float = 2.0) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class WaitQueue:
    """Contacts waiting for their next dial (AGUARDANDO, Descartado), per campaign, by time.

    The rows keep ``next_at``, so the queue is rebuilt from them on start; it lives in memory
    because an index on it cost every insert another page in its commit. Entries are checked
    against the row when they come out, so a deleted or rescheduled contact's old entry is dropped."""

    def __init__(self, rows: list[tuple[str, float, int]]) -> None:
        self._heaps: dict[str, list[tuple[float, int]]] = {}
        for campaign_id, next_at, cid in rows:
            self._heaps.setdefault(campaign_id, []).append((next_at, cid))
        for heap in self._heaps.values():
            heapq.heapify(heap)

    def push(self, campaign_id: str, next_at: float, cid: int) -> None:
        heapq.heappush(self._heaps.setdefault(campaign_id, []), (next_at, cid))

    def pop_due(self, campaign_id: str, now: float) -> tuple[float, int] | None:
        heap = self._heaps.get(campaign_id)
        if not heap or heap[0][0] > now:
            return None
        return heapq.heappop(heap)


class Store:
    def __init__(self, path: str, *, faults: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.faults = faults
        self.render_faults = faults & fragments.RENDER_FAULTS
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        # A checkpoint fsyncs; on the loop thread it would stall every request behind the disk.
        # The Checkpointer thread does them instead, on its own connection.
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self.db.executescript(SCHEMA)
        self._in_tx = False
        self._instances: dict[str, Instance] | None = None
        self._campaigns: dict[str, Campaign | None] = {}
        self._queue: WaitQueue | None = None
        self._checkpointer = Checkpointer(path)
        row = self.db.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()
        self._next_contact_id = max(int(row[0]) + 1, 1)
        self._rerender_if_faults_changed()

    def close(self) -> None:
        self._checkpointer.stop()
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()

    # --- transactions -------------------------------------------------------------------------

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction; nested uses join the outer one. Rolled back on any exception."""
        if self._in_tx:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._in_tx = False
            self.db.execute("ROLLBACK")
            self._instances = None  # the caches may hold rolled-back rows
            self._campaigns.clear()
            self._queue = None
            raise
        self._in_tx = False
        self.db.execute("COMMIT")

    # --- meta ---------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    # --- API instances (four-factor auth) -----------------------------------------------------

    def instances(self) -> dict[str, Instance]:
        """token -> Instance, cached: auth runs on every call and instances change rarely."""
        if self._instances is None:
            rows = self.db.execute("SELECT token, login, senha, source_ip, role FROM instances").fetchall()
            self._instances = {r[0]: Instance(*r) for r in rows}
        return self._instances

    def add_instance(self, login: str, senha: str, token: str, source_ip: str, role: str) -> None:
        with self.tx():
            self.db.execute("INSERT INTO instances VALUES(?,?,?,?,?)", (token, login, senha, source_ip, role))
        self._instances = None

    def ensure_credentials(self) -> None:
        """Random credentials on a fresh database (docs/DESIGN.md); kept across restarts."""
        if self.instances():
            return
        senha = secrets.token_urlsafe(12)
        self.add_instance("root", senha, secrets.token_hex(16), "127.0.0.1", "main")
        self.add_instance("root", senha, secrets.token_hex(16), "127.0.0.2", "foreign")

    def instance(self, role: str) -> Instance:
        for inst in self.instances().values():
            if inst.role == role:
                return inst
        raise LookupError(f"no API instance with role {role!r}")

    # --- campaigns and contacts ---------------------------------------------------------------

    def add_campaign(self, cid: str, nome: str, owner: str = "root", disposable: bool = False) -> None:
        self.db.execute("INSERT OR IGNORE INTO campaigns VALUES(?,?,?,?)", (cid, nome, owner, int(disposable)))
        self._campaigns.clear()

    def campaign(self, cid: str, owner: str | None = None) -> Campaign | None:
        """Cached: every insert looks its campaign up, and campaigns change only by seeding."""
        if cid not in self._campaigns:
            if len(self._campaigns) > 10_000:  # unknown ids are cached too; keep that bounded
                self._campaigns.clear()
            row = self.db.execute("SELECT id, nome, owner, disposable FROM campaigns WHERE id=?", (cid,)).fetchone()
            self._campaigns[cid] = None if row is None else Campaign(row[0], row[1], row[2], bool(row[3]))
        camp = self._campaigns[cid]
        if camp is None or (owner is not None and camp.owner != owner):
            return None
        return camp

    def campaigns(self) -> list[Campaign]:
        rows = self.db.execute("SELECT id, nome, owner, disposable FROM campaigns ORDER BY id").fetchall()
        return [Campaign(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def insert_contact(
        self,
        campaign: Campaign,
        cols: dict[str, str],
        extra: dict[str, str],
        next_at: float | None,
        *,
        contact_id: int | None = None,
    ) -> int:
        """``cols`` holds every CONTACT_COLUMNS name except id and id_registro, which are assigned here
        (the next free id, or ``contact_id`` for seed data that must keep the document's ids).

        The row keeps no copy of the columns beside its fragment: :meth:`contact` reads them back
        from it (fewer bytes per insert), with status and tentativas from their own SQL columns and
        cuje from extra, the only values a render fault may show differently."""
        cid = max(self._next_contact_id, contact_id or 0)
        cols = dict(cols, id=str(cid), id_registro=str(cid))
        self.db.execute(
            "INSERT INTO contacts(id, campanha_id, status, tentativas, next_at, numero, extra, frag)"
            " VALUES(?,?,?,?,?,?,?,?)",
            (
                cid,
                campaign.id,
                cols["status"],
                int(cols["tentativas"] or 0),
                next_at,
                cols["numero"],
                json.dumps(dict(extra, cuje=cols["cuje"]), ensure_ascii=False, separators=(",", ":")),
                fragments.render(cols, self.render_faults),
            ),
        )
        self._next_contact_id = cid + 1
        self._enqueue(campaign.id, cols["status"], next_at, cid)
        return cid

    @staticmethod
    def _columns(status: str, tentativas: int, extra: str, frag: bytes) -> dict[str, str]:
        shown = json.loads(frag)
        cols = {name: shown.get(name, "") for name in CONTACT_COLUMNS}
        cols.update(status=status, tentativas=str(tentativas), cuje=json.loads(extra).get("cuje", ""))
        return cols

    def contact(self, contact_id: int) -> dict[str, str] | None:
        row = self.db.execute(
            "SELECT status, tentativas, extra, frag FROM contacts WHERE id=?", (contact_id,)
        ).fetchone()
        return None if row is None else self._columns(*row)

    def contact_extra(self, contact_id: int) -> dict[str, str]:
        row = self.db.execute("SELECT extra FROM contacts WHERE id=?", (contact_id,)).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def update_contact(self, contact_id: int, changes: dict[str, str], next_at: float | None) -> None:
        row = self.db.execute(
            "SELECT campanha_id, status, tentativas, extra, frag FROM contacts WHERE id=?", (contact_id,)
        ).fetchone()
        if row is None:
            return  # deleted while being dialled
        cols = self._columns(*row[1:])
        cols.update(changes)
        self.db.execute(
            "UPDATE contacts SET status=?, tentativas=?, next_at=?, frag=? WHERE id=?",
            (
                cols["status"],
                int(cols["tentativas"] or 0),
                next_at,
                fragments.render(cols, self.render_faults),
                contact_id,
            ),
        )
        self._enqueue(row[0], cols["status"], next_at, contact_id)

    def _enqueue(self, campaign_id: str, status: str, next_at: float | None, cid: int) -> None:
        if next_at is not None and status != "Dialing" and self._queue is not None:
            self._queue.push(campaign_id, next_at, cid)

    def _waiting(self) -> WaitQueue:
        if self._queue is None:
            rows = self.db.execute(
                "SELECT campanha_id, next_at, id FROM contacts WHERE next_at IS NOT NULL AND status != 'Dialing'"
            ).fetchall()
            self._queue = WaitQueue(rows)
        return self._queue

    def count_contacts(self, campaign_id: str | None = None) -> int:
        if campaign_id is None:
            return int(self.db.execute("SELECT count(*) FROM contacts").fetchone()[0])
        return int(self.db.execute("SELECT count(*) FROM contacts WHERE campanha_id=?", (campaign_id,)).fetchone()[0])

    def delete_contacts(self, campaign_id: str, *, only_dialled: bool = False) -> int:
        sql = "DELETE FROM contacts WHERE campanha_id=?"
        if only_dialled:
            sql += " AND status != 'AGUARDANDO'"
        return self.db.execute(sql, (campaign_id,)).rowcount

    async def listing(self, campaign_id: str) -> AsyncGenerator[bytes, None]:
        """The statusdiscador body, streamed in chunks from one consistent snapshot."""
        reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        reader.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # pages read through a mapping: half the time of read()
        try:
            reader.execute("BEGIN")
            cur = reader.execute("SELECT frag FROM contacts WHERE campanha_id=? ORDER BY id", (campaign_id,))
            first = True
            while True:
                rows = cur.fetchmany(LISTING_CHUNK_ROWS)
                if not rows:
                    break
                chunk = b",".join(r[0] for r in rows)
                yield (b"[" if first else b",") + chunk
                first = False
            yield b"[]" if first else b"]"
            reader.execute("COMMIT")
        finally:
            reader.close()

    def listing_bytes(self, campaign_id: str) -> bytes:
        rows = self.db.execute("SELECT frag FROM contacts WHERE campanha_id=? ORDER BY id", (campaign_id,))
        return b"[" + b",".join(r[0] for r in rows) + b"]"

    def _rerender_if_faults_changed(self) -> None:
        signature = ",".join(sorted(self.render_faults))
        if self.meta("render_faults") == signature:
            return
        with self.tx():
            rows = self.db.execute("SELECT id, status, tentativas, extra, frag FROM contacts").fetchall()
            for cid, *row in rows:
                self.db.execute(
                    "UPDATE contacts SET frag=? WHERE id=?",
                    (fragments.render(self._columns(*row), self.render_faults), cid),
                )
            self.set_meta("render_faults", signature)

    # --- dialer queue -------------------------------------------------------------------------

    def dialing_counts(self) -> dict[str, int]:
        # Left to itself the planner walks contacts_campaign for the GROUP BY: every row of the table,
        # twenty times a second. The partial index holds only the few contacts being dialled.
        rows = self.db.execute(
            "SELECT campanha_id, count(*) FROM contacts INDEXED BY contacts_dialing"
            " WHERE status = 'Dialing' GROUP BY campanha_id"
        )
        return {r[0]: int(r[1]) for r in rows}

    def due_dialing(self, now: float, limit: int) -> list[DueContact]:
        rows = self.db.execute(
            "SELECT id, campanha_id, status, tentativas, numero FROM contacts"
            " WHERE status = 'Dialing' AND next_at <= ? ORDER BY next_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [DueContact(*r) for r in rows]

    def due_waiting(self, campaign_id: str, now: float, limit: int) -> list[DueContact]:
        queue = self._waiting()
        due: list[DueContact] = []
        while len(due) < limit:
            entry = queue.pop_due(campaign_id, now)
            if entry is None:
                break
            next_at, cid = entry
            row = self.db.execute(
                "SELECT status, tentativas, numero, next_at FROM contacts WHERE id=?", (cid,)
            ).fetchone()
            if row is None or row[3] != next_at or row[0] == "Dialing":
                continue  # deleted, or rescheduled since: a newer entry stands for it
            due.append(DueContact(cid, campaign_id, row[0], row[1], row[2]))
        return due

    # --- call records -------------------------------------------------------------------------

    def add_call(self, rec: dict[str, Any], ts: float) -> None:
        """``rec`` holds DETAIL_FIELDS (+ id_clicktocall); its id is assigned here."""
        rec = dict(rec)
        cur = self.db.execute(
            "INSERT INTO calls(ts, campanha, id_mailing, id_clicktocall, gravacao, tamanho, statuschamada, rec)"
            " VALUES(?,?,?,?,?,?,?, '{}')",
            (
                ts,
                rec.get("campanha") or None,
                rec.get("id_mailing") or None,
                rec.get(ID_CLICKTOCALL) or None,
                rec.get("gravacao") or None,
                int(rec.get("tamanho_gravacao") or 0),
                rec.get("statuschamada"),
            ),
        )
        rec["id"] = str(cur.lastrowid)
        ordered = {k: rec.get(k, "") for k in DETAIL_FIELDS}
        if rec.get(ID_CLICKTOCALL):
            ordered[ID_CLICKTOCALL] = rec[ID_CLICKTOCALL]
        self.db.execute(
            "UPDATE calls SET rec=? WHERE id=?",
            (json.dumps(ordered, ensure_ascii=False, separators=(",", ":")), cur.lastrowid),
        )

    def call_detail(self, campaign_id: str, id_mailing: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT rec FROM calls WHERE campanha=? AND id_mailing=? AND statuschamada='ANSWER'"
            " ORDER BY ts DESC LIMIT 1",
            (campaign_id, id_mailing),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def calls_since(self, ts: float, limit: int) -> list[str]:
        """JSON texts of call records at or after ``ts``, oldest first."""
        rows = self.db.execute("SELECT rec FROM calls WHERE ts >= ? ORDER BY ts, id LIMIT ?", (ts, limit))
        return [r[0] for r in rows]

    def recording_size(self, gravacao: str) -> int | None:
        row = self.db.execute("SELECT tamanho FROM calls WHERE gravacao=? LIMIT 1", (gravacao,)).fetchone()
        return None if row is None else int(row[0])

    def call_by_clicktocall(self, c2c_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT rec FROM calls WHERE id_clicktocall=? LIMIT 1", (c2c_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    # --- operator events ----------------------------------------------------------------------

    def add_event(self, rec: dict[str, str], ts: float) -> None:
        cur = self.db.execute("INSERT INTO events(ts, rec) VALUES(?, '{}')", (ts,))
        ordered = {k: rec.get(k, "") for k in OPERATION_FIELDS}
        ordered["id"] = str(cur.lastrowid)
        self.db.execute(
            "UPDATE events SET rec=? WHERE id=?",
            (json.dumps(ordered, ensure_ascii=False, separators=(",", ":")), cur.lastrowid),
        )

    def events_since(self, ts: float, limit: int) -> list[str]:
        rows = self.db.execute("SELECT rec FROM events WHERE ts >= ? ORDER BY ts, id LIMIT ?", (ts, limit))
        return [r[0] for r in rows]

    # --- extensions and classe5 clients -------------------------------------------------------

    def add_classe5(self, login: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO classe5(login, blocked) VALUES(?, 0)", (login,))

    def add_extension(
        self, number: str, password: str, *, ramal_web: bool = False, classe5: str | None = None, nome: str = ""
    ) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO extensions VALUES(?,?,?,?,?)", (number, password, int(ramal_web), classe5, nome)
        )

    def extensions(self) -> list[ExtensionRow]:
        rows = self.db.execute(
            "SELECT number, password, ramal_web, classe5, nome FROM extensions ORDER BY number"
        ).fetchall()
        return [ExtensionRow(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows]

    def extension(self, number: str) -> ExtensionRow | None:
        r = self.db.execute(
            "SELECT number, password, ramal_web, classe5, nome FROM extensions WHERE number=?", (number,)
        ).fetchone()
        return None if r is None else ExtensionRow(r[0], r[1], bool(r[2]), r[3], r[4])

    def classe5_blocked(self, login: str) -> bool | None:
        """None when there is no such client."""
        row = self.db.execute("SELECT blocked FROM classe5 WHERE login=?", (login,)).fetchone()
        return None if row is None else bool(row[0])

    def set_classe5_blocked(self, login: str, blocked: bool) -> bool:
        """False when there is no such client."""
        return self.db.execute("UPDATE classe5 SET blocked=? WHERE login=?", (int(blocked), login)).rowcount > 0

    def sip_account(self, number: str) -> SipAccount | None:
        row = self.db.execute(
            "SELECT e.password, e.ramal_web, coalesce(c.blocked, 0) FROM extensions e"
            " LEFT JOIN classe5 c ON c.login = e.classe5 WHERE e.number=?",
            (number,),
        ).fetchone()
        return None if row is None else SipAccount(number, row[0], bool(row[1]), bool(row[2]))

    def next_call_seq(self) -> int:
        """The sequence number the next call record will get (uniqueid ``<epoch>.<seq>``)."""
        return int(self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM calls").fetchone()[0])

    def is_extension_blocked(self, number: str) -> bool:
        """For the SIP side: an extension of a blocked classe5 client may neither register nor call."""
        row = self.db.execute(
            "SELECT c.blocked FROM extensions e JOIN classe5 c ON c.login = e.classe5 WHERE e.number=?", (number,)
        ).fetchone()
        return bool(row and row[0])


def empty_contact_columns() -> dict[str, str]:
    return {name: "" for name in CONTACT_COLUMNS}


def default_db_path(state_dir: str | None) -> str:
    import tempfile

    fd, path = tempfile.mkstemp(prefix="central-", suffix=".sqlite3", dir=state_dir)
    os.close(fd)
    return path
