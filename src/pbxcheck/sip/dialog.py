"""RFC 3261 section 12 dialogs: state kept between transactions (frozen; updates return copies).

A UAC makes its dialog from the INVITE and a 1xx-with-To-tag or 2xx (12.1.2), a UAS from the
INVITE and the response it sent (12.1.1). ``make_request_in_dialog`` builds ACK (for a 2xx), BYE,
re-INVITE... with the route set, remote target and CSeq rules of 12.2.1.1 and returns the updated
dialog with the request. The ACK for a non-2xx is not a dialog's business: the client transaction
builds it (``transaction.make_ack``, 17.1.1.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from pbxcheck.sip.errors import SipParseError, TransactionError
from pbxcheck.sip.headers import NameAddr, SipUri, Via
from pbxcheck.sip.ids import new_branch
from pbxcheck.sip.ids import new_tag as new_tag  # alias: the one generator is ids.py
from pbxcheck.sip.message import Headers, Message, Request, Response

TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


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
    state: str = "confirmed"  # "early" | "confirmed"
    secure: bool = False
    local_contact: str | None = None

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    # --- creation ---
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
            state="early" if response.status < 200 else "confirmed",
            secure=request.uri.lower().startswith("sips:"),
            local_contact=local_contact or request.headers.get("Contact"),
        )

    @classmethod
    def uas(cls, request: Request, response: Response) -> Dialog:
        """12.1.1: from the request we received and the 1xx/2xx we sent (it carries our To tag)."""
        local_tag = response.to.tag
        if local_tag is None:
            raise TransactionError("our response must carry a To tag to create a dialog")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_untagged(request.to),
            remote_uri=_untagged(request.from_),
            remote_target=_contact_uri(request) or str(request.from_.uri),
            route_set=tuple(request.headers.get_all("Record-Route")),
            remote_seq=request.cseq.number,
            state="early" if response.status < 200 else "confirmed",
            secure=request.uri.lower().startswith("sips:"),
            local_contact=response.headers.get("Contact"),
        )

    # --- updates ---
    def on_response(self, response: Response) -> Dialog:
        """A response to our request within the dialog: a 2xx confirms an early dialog and
        recomputes its route set (13.2.2.4); a 2xx to a target refresh updates the target."""
        if not 200 <= response.status < 300:
            return self
        changes: dict[str, object] = {}
        if self.state == "early":
            changes.update(state="confirmed", route_set=tuple(reversed(response.headers.get_all("Record-Route"))))
            if response.to.tag and not self.remote_tag:
                changes["remote_tag"] = response.to.tag
        if response.cseq.method in TARGET_REFRESH and (target := _contact_uri(response)):
            changes["remote_target"] = target
        return replace(self, **changes) if changes else self  # type: ignore[arg-type]

    def on_request(self, request: Request) -> Dialog:
        """12.2.2: a request from the peer in this dialog. A CSeq lower than the last one is an
        error the UAS answers 500; ACK/CANCEL carry the INVITE's number and do not count."""
        if request.method in ("ACK", "CANCEL"):
            return self
        n = request.cseq.number
        if self.remote_seq is not None and n <= self.remote_seq:
            raise TransactionError(f"CSeq {n} not above {self.remote_seq}: answer 500")
        changes: dict[str, object] = {"remote_seq": n}
        if request.method in TARGET_REFRESH and (target := _contact_uri(request)):
            changes["remote_target"] = target
        return replace(self, **changes)  # type: ignore[arg-type]

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
