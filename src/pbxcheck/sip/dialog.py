"""RFC 3261 section 12 dialogs: state kept between transactions (frozen; updates return copies).

A UAC makes its dialog from the INVITE and a 1xx-with-To-tag or 2xx (12.1.2), a UAS from the
INVITE and the response it sent (12.1.1). ``make_request_in_dialog`` builds ACK (for a 2xx), BYE,
re-INVITE... with the route set, remote target and CSeq rules of 12.2.1.1 and returns the updated
dialog with the request. The ACK for a non-2xx is not a dialog's business: the client transaction
builds it (``transaction.make_ack``, 17.1.1.3).

The dialog is the one place the UA's calls (``sip.ua.Call``) and the central's B2BUA legs
(``central.sip.b2bua.Leg``) keep Call-ID, tags, CSeq numbers, remote target and route set. A UAC
starts one with ``outgoing`` (state INITIAL: it builds its own dialog-creating INVITE and retries of
it) and feeds it every response (``on_response``); a UAS starts one with ``incoming`` (or ``uas``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from pbxcheck.sip.errors import SipParseError, TransactionError
from pbxcheck.sip.headers import NameAddr, SipUri, Via
from pbxcheck.sip.ids import new_branch
from pbxcheck.sip.ids import new_tag as new_tag  # alias: the one generator is ids.py
from pbxcheck.sip.message import Headers, Message, Request, Response

TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogState(StrEnum):
    """RFC 3261 §12's dialog states, plus the UAC's wait before any response carries a To tag."""

    INITIAL = "initial"  # UAC: our dialog-creating request is out, no response with a To tag yet
    EARLY = "early"  # a 1xx with a To tag (UAC), or our tag picked and no 2xx sent yet (UAS)
    CONFIRMED = "confirmed"  # a 2xx exchanged
    TERMINATED = "terminated"  # a final non-2xx to the dialog-creating request, a BYE, a 481/408


_FORMING = (DialogState.INITIAL, DialogState.EARLY)


def _contact_uri(message: Message) -> str | None:
    c = message.contact
    return str(c.uri) if c is not None else None


@dataclass(frozen=True, slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr  # our From (UAC) / the request's To (UAS), without tag
    remote_uri: NameAddr
    remote_target: str  # the peer's Contact URI
    route_set: tuple[str, ...] = ()  # Route values, in the order our requests carry them
    local_seq: int | None = None
    remote_seq: int | None = None
    invite_seq: int | None = None  # CSeq of the last INVITE we sent: the ACK for its 2xx reuses it
    state: DialogState = DialogState.CONFIRMED
    secure: bool = False
    local_contact: str | None = None

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    # --- creation ---
    @classmethod
    def outgoing(
        cls,
        *,
        call_id: str,
        local_uri: NameAddr,
        local_tag: str,
        remote_uri: NameAddr,
        remote_target: str | None = None,
        local_seq: int = 0,
        local_contact: str | None = None,
    ) -> Dialog:
        """A UAC before its dialog-creating request (state INITIAL): ``make_request_in_dialog("INVITE")``
        builds that request (To without tag, Request-URI the remote target, CSeq ``local_seq + 1``)
        and every retry of it (a new CSeq after a 401/407); responses go to ``on_response``."""
        return cls(
            call_id=call_id,
            local_tag=local_tag,
            remote_tag="",
            local_uri=_untagged(local_uri),
            remote_uri=_untagged(remote_uri),
            remote_target=remote_target or str(remote_uri.uri),
            local_seq=local_seq,
            state=DialogState.INITIAL,
            secure=(remote_target or str(remote_uri.uri)).lower().startswith("sips:"),
            local_contact=local_contact,
        )

    @classmethod
    def incoming(cls, request: Request, local_tag: str, *, local_contact: str | None = None) -> Dialog:
        """12.1.1, UAS: the dialog ``request`` creates once we answer it with ``local_tag`` (state EARLY
        until ``confirm()``: our 2xx went out)."""
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_untagged(request.to),
            remote_uri=_untagged(request.from_),
            remote_target=_contact_uri(request) or str(request.from_.uri),
            route_set=tuple(request.headers.get_all("Record-Route")),
            remote_seq=request.cseq.number,
            state=DialogState.EARLY,
            secure=request.uri.lower().startswith("sips:"),
            local_contact=local_contact,
        )

    @classmethod
    def uac(cls, request: Request, response: Response, local_contact: str | None = None) -> Dialog:
        """12.1.2: from our request and a 2xx, or a 1xx with a To tag (early dialog)."""
        if not 100 < response.status < 300:
            raise TransactionError(f"a {response.status} does not create a dialog")
        remote_tag = response.to.tag
        if remote_tag is None and response.status < 200:
            raise TransactionError("a provisional response without To tag does not create a dialog")
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=remote_tag or "",  # "" : an RFC 2543 peer that does not tag
            local_uri=_untagged(request.from_),
            remote_uri=_untagged(response.to),
            remote_target=_contact_uri(response) or request.uri,
            route_set=tuple(reversed(response.headers.get_all("Record-Route"))),
            local_seq=request.cseq.number,
            invite_seq=request.cseq.number if request.method == "INVITE" else None,
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
            secure=request.uri.lower().startswith("sips:"),
            local_contact=local_contact or request.headers.get("Contact"),
        )

    @classmethod
    def uas(cls, request: Request, response: Response) -> Dialog:
        """12.1.1: from the request we received and the 1xx/2xx we sent (it carries our To tag)."""
        local_tag = response.to.tag
        if local_tag is None:
            raise TransactionError("our response must carry a To tag to create a dialog")
        dialog = cls.incoming(request, local_tag, local_contact=response.headers.get("Contact"))
        return dialog.confirm() if 200 <= response.status < 300 else dialog

    # --- updates ---
    def on_response(self, response: Response) -> Dialog:
        """A response to our request. Forming (INITIAL/EARLY), to the dialog-creating request: a
        1xx with a To tag makes an INITIAL dialog EARLY (12.1.2), a 2xx confirms it and (re)computes
        its route set (13.2.2.4), a final non-2xx terminates it (a 401/407 the UAC answers with
        credentials is a retry: do not feed it). Confirmed: a 2xx to a target refresh updates the
        target; a 481 or 408 terminates the dialog (12.2.1.2)."""
        status = response.status
        if self.state in _FORMING and response.cseq.method == "INVITE" and response.cseq.number == self.invite_seq:
            tag = response.to.tag
            if status < 200:
                if status == 100 or not tag or self.state is DialogState.EARLY:
                    return self
                return replace(
                    self,
                    state=DialogState.EARLY,
                    remote_tag=tag,
                    remote_uri=_untagged(response.to),
                    route_set=tuple(reversed(response.headers.get_all("Record-Route"))),
                    remote_target=_contact_uri(response) or self.remote_target,
                )
            if status >= 300:
                return replace(self, state=DialogState.TERMINATED)
            return replace(
                self,
                state=DialogState.CONFIRMED,
                remote_tag=tag or self.remote_tag,
                remote_uri=_untagged(response.to),
                route_set=tuple(reversed(response.headers.get_all("Record-Route"))),
                remote_target=_contact_uri(response) or self.remote_target,
            )
        if status in (408, 481) and self.state is DialogState.CONFIRMED:
            return replace(self, state=DialogState.TERMINATED)
        if 200 <= status < 300 and response.cseq.method in TARGET_REFRESH and (target := _contact_uri(response)):
            return replace(self, remote_target=target)
        return self

    def confirm(self) -> Dialog:
        """UAS: our 2xx to the dialog-creating request went out."""
        return self if self.state is DialogState.CONFIRMED else replace(self, state=DialogState.CONFIRMED)

    def terminate(self) -> Dialog:
        """The dialog is over (a BYE sent or received, a final non-2xx we sent, a CANCEL honoured)."""
        return self if self.state is DialogState.TERMINATED else replace(self, state=DialogState.TERMINATED)

    def on_request(self, request: Request) -> Dialog:
        """12.2.2: a request from the peer in this dialog. A CSeq lower than the last one is an
        error the UAS answers 500; ACK/CANCEL carry the INVITE's number and do not count."""
        if request.method in ("ACK", "CANCEL"):
            return self
        n = request.cseq.number
        if self.remote_seq is not None and n <= self.remote_seq:
            raise TransactionError(f"CSeq {n} not above {self.remote_seq}: answer 500")
        if request.method in TARGET_REFRESH and (target := _contact_uri(request)):
            return replace(self, remote_seq=n, remote_target=target)
        return replace(self, remote_seq=n)

    # --- requests ---
    def make_request_in_dialog(
        self,
        method: str,
        *,
        via: Via | str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        max_forwards: int = 70,
    ) -> tuple[Dialog, Request]:
        """(updated dialog, request). ``via`` is our sent-by (a fresh branch is set). ACK reuses the
        INVITE's CSeq number; any other method takes the next local number (12.2.1.1)."""
        v = Via.parse(via) if isinstance(via, str) else via
        v = v.with_param("branch", new_branch())
        dialog = self
        if method == "ACK":
            if self.invite_seq is None:
                raise TransactionError("ACK in a dialog without an INVITE of ours")
            seq = self.invite_seq
        else:
            seq = (self.local_seq or 0) + 1
            dialog = replace(self, local_seq=seq, invite_seq=seq if method == "INVITE" else self.invite_seq)
        ruri, routes = self._target_and_routes()
        pairs: list[tuple[str, str]] = [("Via", str(v)), ("Max-Forwards", str(max_forwards))]
        pairs += [("Route", r) for r in routes]
        pairs += [
            ("From", str(self.local_uri.with_tag(self.local_tag))),
            ("To", str(self.remote_uri.with_tag(self.remote_tag) if self.remote_tag else self.remote_uri)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{seq} {method}"),
        ]
        if method in TARGET_REFRESH and self.local_contact:
            pairs.append(("Contact", self.local_contact))
        pairs.extend(headers)
        if content_type is not None:
            pairs.append(("Content-Type", content_type))
        return dialog, Request(method, ruri, Headers(tuple(pairs)), body)

    def _target_and_routes(self) -> tuple[str, list[str]]:
        """12.2.1.1: loose routing keeps the remote target as Request-URI; a strict first hop
        takes the Request-URI, and the remote target goes last in Route."""
        if not self.route_set:
            return self.remote_target, []
        first = NameAddr.parse(self.route_set[0], "Route")
        if isinstance(first.uri, SipUri) and first.uri.has_param("lr"):
            return self.remote_target, list(self.route_set)
        return str(first.uri), [*self.route_set[1:], f"<{self.remote_target}>"]

    def matches(self, message: Message) -> bool:
        """Whether ``message`` belongs to this dialog: a request from the peer (its From tag is the
        remote tag) or a response to one of our requests (its To tag is the remote tag)."""
        try:
            if message.call_id != self.call_id:
                return False
            if isinstance(message, Request):
                return (message.to.tag or "", message.from_.tag or "") == (self.local_tag, self.remote_tag)
            return ((message.from_.tag or ""), (message.to.tag or "")) == (self.local_tag, self.remote_tag)
        except SipParseError:  # a message without usable From/To/Call-ID cannot be ours
            return False


def _untagged(addr: NameAddr) -> NameAddr:
    return replace(addr, params=tuple(p for p in addr.params if p[0].lower() != "tag"))
