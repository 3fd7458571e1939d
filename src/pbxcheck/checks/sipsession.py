"""The per-check SIP session (the probes' ``sip`` fixture): its channels and phones, and failing a
clause with the exchange.

Every channel and phone of one check logs into one :class:`~pbxcheck.sip.ladder.MessageLog`; a failed
check's text carries the ladder and the last raw messages (through the shared formatter, redacted),
and at teardown the ladder, the raw messages and (crafted packets or a failure) a pcap go to the
Allure report. ``run`` bounds the probe's scenario in time and closes everything it opened.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

import pytest

from ..contract import ClauseId
from ..redact import Redactor
from ..sip.flow import Addr
from ..sip.ladder import MessageLog, render_ladder
from ..sip.ua import UserAgent
from ..sip_target import ua_config_for
from ..target import Extension, Target
from .checker import ClauseFailure
from .failure import failure_headline, format_failure
from .sipkit import USER_AGENT, Channel

RAW_LIMIT = 60_000  # characters of raw messages kept in one attachment / failure text


class SipSession:
    def __init__(self, target: Target, redactor: Redactor, name: str) -> None:
        self.target, self.redactor, self.name = target, redactor, name
        self.log = MessageLog(limit=5000)
        self.channels: list[Channel] = []
        self.agents: list[UserAgent] = []
        self.crafted = False  # set by probes that sent scapy-crafted packets: a pcap is attached
        self.notes: list[str] = []

    def extensions(self, n: int, *, ramal_web: bool | None = None, exclude: tuple[str, ...] = ()) -> list[Extension]:
        """``n`` extensions (the disposable classe5 client's last: C5-1 blocks it), or skip."""
        pool = [
            e
            for e in self.target.extensions
            if e.number not in exclude and (ramal_web is None or e.ramal_web == ramal_web)
        ]
        pool.sort(key=lambda e: e.classe5_client == self.target.disposable_classe5)
        if len(pool) < n:
            kind = "" if ramal_web is None else (" with ramal_web" if ramal_web else " without ramal_web")
            pytest.skip(f"the target file lists fewer than {n} extensions{kind} ([[extensions]])")
        return pool[:n]

    def never_valid_extension(self) -> str:
        """A random extension number that is not in the target file (the enumeration baseline)."""
        known = {e.number for e in self.target.extensions}
        while (cand := "8" + "".join(str(secrets.randbelow(10)) for _ in range(6))) in known:
            pass
        return cand

    async def channel(self, transport: str = "UDP", *, local: Addr = ("127.0.0.1", 0)) -> Channel:
        ch = await Channel.to(self.target, transport, self.log, local=local)
        self.channels.append(ch)
        return ch

    async def phone(
        self,
        ext: Extension,
        transport: str = "UDP",
        *,
        local: Addr = ("127.0.0.1", 0),
        beside: UserAgent | None = None,
        answer_delay: float = 0.05,
    ) -> UserAgent:
        """``ext`` as a user agent on its own socket, or on ``beside``'s (two devices behind one NAT
        mapping); it answers a call 183 with SDP, then 200."""
        cfg = ua_config_for(
            self.target,
            ext.number,
            transport=transport,
            local_host=local[0],
            local_port=local[1],
            auto_answer=answer_delay,
            early_media=True,
            user_agent=USER_AGENT,
            timeout=2.0,
            unregister_on_close=False,
            rtp_port=10_000 + 2 * secrets.randbelow(4000),
        )  # SIP-INV-2's range
        port = beside.port if beside is not None else None
        ua = await UserAgent(cfg, port or await self.channel(transport, local=local)).start()
        self.agents.append(ua)
        return ua

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
        async def main() -> Any:
            try:
                return await asyncio.wait_for(coro, timeout)
            except TimeoutError:
                self.fail_any(f"the probe did not finish within {timeout:.0f} s (bounded)")
            finally:
                for ua in self.agents:
                    await ua.close()
                for ch in self.channels:
                    await ch.close()
                del self.agents[:], self.channels[:]

        return asyncio.run(main())

    def ladder(self) -> str:
        return self.redactor.text(render_ladder(self.log.entries, title=f"SIP exchange of {self.name}"))

    def raw(self) -> str:
        text = "\n".join(
            f"--- {e.transport} {e.src[0]}:{e.src[1]} -> {e.dst[0]}:{e.dst[1]}\n"
            + e.data.decode("utf-8", "replace").replace("\r\n", "\n")
            for e in self.log.entries
        )
        if len(text) > RAW_LIMIT:
            text = text[:RAW_LIMIT] + f"\n… ({len(text)} characters in all; the rest in the Allure attachment)"
        return self.redactor.text(text)

    def fail(self, clause_id: ClauseId, what: str) -> NoReturn:
        """Fail ``clause_id`` through the shared formatter: what went wrong, the ladder, the notes,
        the raw messages (the reproduction of a SIP exchange)."""
        tail = self.raw()
        sections = [
            self.ladder(),
            "\n".join(self.notes),
            "raw messages (last of the exchange):\n" + tail[-6000:] if tail else "",
        ]
        raise ClauseFailure(
            clause_id,
            format_failure(clause_id, what, sections, redactor=self.redactor),
            headline=failure_headline(clause_id, what, redactor=self.redactor),
        )

    def fail_any(self, what: str) -> NoReturn:
        raise AssertionError(self.redactor.text(what + "\n\n" + self.ladder()))

    def check(self, condition: object, clause_id: ClauseId, what: str | Callable[[], str]) -> None:
        if not condition:
            self.fail(clause_id, what() if callable(what) else what)

    def attach(self, failed: bool) -> None:
        """The ladder, the raw messages and (crafted packets or a failure) a pcap, to the Allure report."""
        try:
            import allure
        except ImportError:
            return
        if not len(self.log):
            return
        allure.attach(self.ladder(), name="SIP ladder", attachment_type=allure.attachment_type.TEXT)
        allure.attach(self.raw(), name="SIP messages", attachment_type=allure.attachment_type.TEXT)
        if self.crafted or failed:
            try:
                from pbxcheck.sip.drivers.craft import write_pcap

                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "exchange.pcap"
                    write_pcap(
                        [dataclasses.replace(e, data=self.redactor.bytes(e.data)) for e in self.log.entries], path
                    )
                    allure.attach(
                        path.read_bytes(),
                        name="SIP pcap",
                        extension="pcap",
                        attachment_type=getattr(allure.attachment_type, "PCAP", None),
                    )
            except Exception as exc:  # a pcap is a bonus; never fail a check for it
                self.notes.append(f"(no pcap: {exc})")
