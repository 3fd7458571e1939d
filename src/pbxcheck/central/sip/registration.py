"""REGISTER at the reference central (SIP-REG-1..3, SIP-NAT-1): the location service, who is registered
where, and the NAT collision rule.

``Registration.on_register``: admission first (``admission.py``); then Expires (Contact ``expires``
param, else the Expires header, else 3600) is capped at 3600 and honoured; 0 removes the binding;
``Contact: *`` with Expires 0 removes it too; no Contact lists the current binding.

A binding maps an extension to the Contact it registered and to the *flow* the REGISTER came on
(transport, source IP, source port; for TCP/WS/WSS the connection itself). Requests for the
extension are sent on that flow, never to the Contact's host: behind a NAT the Contact names a
private address the central cannot reach (the document's device sends ``Contact: <sip:5545@
192.168.15.121:5060>`` from 201.46.59.189:32670).

SIP-NAT-1, what the reference central does (the document: "se outro dispositivo client enviar a
mesma porta de origem haverá um conflito ... salvo se o ip de internet for diferente"):

* Each flow (transport, IP, port) belongs to at most one extension: the one that registered on it
  last. A REGISTER from extension B on a flow that extension A holds takes the flow over; A keeps its
  binding, but A's binding now points at a flow B owns.
* A call to A is then routed to the flow's owner: the INVITE goes to that IP:port with the
  *owner's* Contact as Request-URI (To still names A). The device that receives it is B's: calls to
  the earlier extension reach the later device. When B unregisters (or its binding expires) the
  flow is free again and calls to A go to A's own Contact.
* Two extensions on the same port but different IPs are different flows: no collision.

Fault ``no-port-collision`` keys bindings by extension alone: the INVITE for A carries A's Contact,
as if the central could tell two devices behind one IP:port apart.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from pbxcheck.sip.drivers.base import Flow
from pbxcheck.sip.headers import SipUri
from pbxcheck.sip.message import Request

from .admission import Admission
from .base import Replies, Stats

MAX_EXPIRES = 3600


@dataclass(eq=False)
class Binding:
    ext: str
    contact: str  # the Contact URI as registered
    flow: Flow
    expires_at: float  # monotonic clock
    registered_at: float  # wall clock
    call_id: str = ""
    cseq: int = 0

    @property
    def flow_key(self) -> tuple[str, str, int]:
        return self.flow.key


class Registrar:
    def __init__(self, *, collide: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.collide = collide
        self.clock = clock
        self.by_ext: dict[str, Binding] = {}
        self.flow_owner: dict[tuple[str, str, int], str] = {}

    def update(self, ext: str, contact: str, flow: Flow, expires: int, *, call_id: str = "", cseq: int = 0) -> Binding:
        """Add or refresh ``ext``'s binding; the flow now belongs to ``ext``."""
        old = self.by_ext.get(ext)
        if old is not None and old.flow_key != flow.key and self.flow_owner.get(old.flow_key) == ext:
            del self.flow_owner[old.flow_key]
        b = Binding(ext, contact, flow, self.clock() + expires, time.time(), call_id, cseq)
        self.by_ext[ext] = b
        self.flow_owner[flow.key] = ext
        if flow.reliable:
            # a closed TCP/WS connection cannot carry requests any more: the binding dies with it
            flow.on_close.append(functools.partial(self._flow_closed, ext, b))
        return b

    def _flow_closed(self, ext: str, binding: Binding, flow: Flow) -> None:
        if self.by_ext.get(ext) is binding:
            self.remove(ext)

    def remove(self, ext: str) -> bool:
        b = self.by_ext.pop(ext, None)
        if b is None:
            return False
        if self.flow_owner.get(b.flow_key) == ext:
            del self.flow_owner[b.flow_key]
        return True

    def lookup(self, ext: str) -> Binding | None:
        """``ext``'s own binding while it is alive."""
        b = self.by_ext.get(ext)
        if b is None:
            return None
        if b.expires_at <= self.clock() or b.flow.closed:
            self.remove(ext)
            return None
        return b

    def route(self, ext: str) -> Binding | None:
        """The binding a request for ``ext`` is delivered with (the NAT collision rule above)."""
        b = self.lookup(ext)
        if b is None or not self.collide:
            return b
        owner = self.flow_owner.get(b.flow_key)
        if owner is not None and owner != ext:
            holder = self.lookup(owner)
            if holder is not None and holder.flow_key == b.flow_key:
                return holder
        return b

    def registered(self) -> list[str]:
        return [e for e in list(self.by_ext) if self.lookup(e) is not None]


class Registration:
    """REGISTER requests: admission, then the binding in ``registrar``."""

    def __init__(
        self,
        registrar: Registrar,
        admission: Admission,
        replies: Replies,
        stats: Stats,
        *,
        faults: frozenset[str] = frozenset(),
    ) -> None:
        self.registrar = registrar
        self.admission = admission
        self.replies = replies
        self.stats = stats
        self.faults = faults

    def on_register(self, req: Request, flow: Flow) -> None:
        to_uri = req.to.uri
        user = self.admission.admit(req, flow, to_uri.user if isinstance(to_uri, SipUri) else None)
        if user is None:
            return
        ignore_expires = "expires-ignored" in self.faults
        respond = self.replies.respond
        contact = req.contact  # parsed (and cached) by the parser; None for "Contact: *" or no Contact
        if contact is None and req.contact_star:
            if req.expires != 0:
                respond(req, flow, 400, "Bad Request (Contact * needs Expires 0)")
                return
            if not ignore_expires:
                self.registrar.remove(user)
            respond(req, flow, 200, headers=[("Date", http_date())])
            return
        if contact is None:  # a query: list the current binding
            b = self.registrar.lookup(user)
            headers = [("Date", http_date())]
            if b is not None:
                left = max(0, int(b.expires_at - self.registrar.clock()))
                headers.append(("Contact", f"<{b.contact}>;expires={left}"))
            respond(req, flow, 200, headers=headers)
            return
        exp_s = contact.param("expires")
        expires = int(exp_s) if exp_s is not None and exp_s.isdigit() and len(exp_s) < 10 else req.expires
        expires = MAX_EXPIRES if expires is None else min(expires, MAX_EXPIRES)
        if ignore_expires:
            expires = MAX_EXPIRES
        uri = str(contact.uri)
        if expires == 0:
            self.registrar.remove(user)
            respond(req, flow, 200, headers=[("Date", http_date())])
            return
        self.registrar.update(user, uri, flow, expires, call_id=req.call_id, cseq=req.cseq.number)
        self.stats["registered"] += 1
        respond(
            req,
            flow,
            200,
            headers=[("Contact", f"<{uri}>;expires={expires}"), ("Expires", str(expires)), ("Date", http_date())],
        )


_date_cache: list[object] = [0, ""]


def http_date() -> str:
    """RFC 1123 date for the Date header, formatted once per second (a REGISTER flood asks often)."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
    return str(_date_cache[1])
