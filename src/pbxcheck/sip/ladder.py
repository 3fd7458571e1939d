"""A log of every SIP message a user agent sent or received, and its ladder diagram.

The ladder mirrors the document's "Call flow" traces (time, delta, direction, request method or
status line, "(SDP)" when a body is SDP), so a failed check can show exactly what went over the wire.
Entries keep the raw bytes; nothing in them is secret by construction: a UA never writes its password
into a message (a digest ``response=`` is a hash, and may appear). ``render_ladder(redactor=...)``
scrubs any string a caller still wants hidden.

The log does not depend on the parser: it reads each message with the lenient ``sip.scan`` (which
never raises), so a message the parser rejects (a torture test, a fuzzed packet) is still logged and drawn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from .flow import Addr
from .scan import RawMessage, scan

OUT = "out"
IN = "in"


@dataclass(frozen=True)
class LogEntry:
    time: float  # wall clock (time.time()), for the trace's HH:MM:SS.ffffff
    direction: str  # OUT or IN, seen from the log's owner
    transport: str  # UDP, TCP, WS, WSS
    local: Addr
    remote: Addr
    data: bytes = field(repr=False)

    @cached_property
    def raw(self) -> RawMessage:
        """The lenient scan of ``data`` (computed once: the ladder reads several parts)."""
        return scan(self.data)

    @property
    def first_line(self) -> str:
        return self.raw.start_line

    @property
    def is_response(self) -> bool:
        return self.raw.is_response

    @property
    def call_id(self) -> str | None:
        return self.raw.call_id

    @property
    def has_sdp(self) -> bool:
        ctype = self.raw.header("Content-Type") or ""
        return bool(self.raw.body.strip()) and ctype.lower().startswith("application/sdp")

    @property
    def label(self) -> str:
        """``INVITE (SDP)``, ``401 Unauthorized``, ``200 OK (SDP) [INVITE]``: what the ladder prints."""
        line = self.first_line
        if self.is_response:
            parts = line.split(" ", 1)
            text = parts[1] if len(parts) > 1 else line
            cseq_method = self.raw.cseq_method
            method = f" [{cseq_method}]" if cseq_method else ""
        else:
            text = line.split(" ", 1)[0]
            method = ""
        return text + (" (SDP)" if self.has_sdp else "") + method

    @property
    def src(self) -> Addr:
        return self.local if self.direction == OUT else self.remote

    @property
    def dst(self) -> Addr:
        return self.remote if self.direction == OUT else self.local


class MessageLog:
    """Append-only, bounded list of LogEntry (a long load run must not eat memory)."""

    def __init__(self, limit: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.entries: list[LogEntry] = []
        self.limit = limit
        self.clock = clock
        self.dropped = 0

    def record(self, direction: str, transport: str, local: Addr, remote: Addr, data: bytes) -> LogEntry:
        entry = LogEntry(self.clock(), direction, transport, local, remote, bytes(data))
        if len(self.entries) >= self.limit:
            del self.entries[: self.limit // 10]
            self.dropped += self.limit // 10
        self.entries.append(entry)
        return entry

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def for_call(self, call_id: str) -> list[LogEntry]:
        return [e for e in self.entries if e.call_id == call_id]

    def labels(self, call_id: str | None = None, direction: str | None = None) -> list[str]:
        """Labels in order, e.g. to assert a call flow: ``['INVITE (SDP)', '401 Unauthorized [INVITE]', ...]``."""
        entries = self.for_call(call_id) if call_id else self.entries
        return [e.label for e in entries if direction is None or e.direction == direction]

    def ladder(self, call_id: str | None = None, redactor: Callable[[str], str] | None = None) -> str:
        return render_ladder(
            self.for_call(call_id) if call_id else self.entries,
            title=f"Call flow for {call_id}" if call_id else None,
            redactor=redactor,
        )


def _fmt_addr(a: Addr) -> str:
    return f"{a[0]}:{a[1]}"


def render_ladder(
    entries: Iterable[LogEntry],
    *,
    title: str | None = None,
    width: int = 34,
    redactor: Callable[[str], str] | None = None,
    with_messages: bool = False,
) -> str:
    """The document's "Call flow" trace as text.

    One column per endpoint, in order of first appearance; each message is a line with its wall
    time, the delta since the previous message, and an arrow between the two columns::

        Call flow for abc123
        time             delta        127.0.0.1:40001 (UDP)            127.0.0.1:7048
        16:40:01.123456  +0.000000    |------------- REGISTER ------------->|
        16:40:01.124220  +0.000764    |<--- 401 Unauthorized [REGISTER] ----|
    """
    items = list(entries)
    lines: list[str] = []
    if title:
        lines.append(title)
    if not items:
        lines.append("(no messages)")
        return "\n".join(lines)
    width = max(width, max(len(e.label) for e in items) + 8)  # long labels must not break the arrows
    columns: list[Addr] = []
    for e in items:
        for addr in (e.src, e.dst):
            if addr not in columns:
                columns.append(addr)
    header = f"{'time':<16} {'delta':<12} "
    header += "".join(
        f"{_fmt_addr(a) + (' (' + items[0].transport + ')' if i == 0 else ''):<{width + 1}}"
        for i, a in enumerate(columns)
    )
    lines.append(header.rstrip())
    prev = items[0].time
    for e in items:
        stamp = time.strftime("%H:%M:%S", time.localtime(e.time)) + f".{int((e.time % 1) * 1e6):06d}"
        delta = f"+{e.time - prev:.6f}"
        prev = e.time
        ia, ib = columns.index(e.src), columns.index(e.dst)
        lo, hi = min(ia, ib), max(ia, ib)
        label = f" {e.label} "
        span = (hi - lo) * (width + 1) - 1
        inner = max(span - 2, len(label) + 4)
        fill = inner - len(label)
        body = "-" * (fill // 2) + label + "-" * (fill - fill // 2)
        arrow = ("|" + body + ">|") if ia < ib else ("|<" + body + "|")
        pad = " " * (lo * (width + 1))
        lines.append(f"{stamp:<16} {delta:<12} {pad}{arrow}")
        if with_messages:
            text = e.data.decode("utf-8", "replace")
            lines.extend("    " + ln for ln in text.replace("\r\n", "\n").split("\n"))
    out = "\n".join(lines)
    return redactor(out) if redactor else out
