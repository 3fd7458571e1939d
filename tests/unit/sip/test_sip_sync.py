"""The blocking runner (``sip.sync``) over the engine, with a fake connection whose waits move a fake
clock: the retransmissions come from the engine's tables, on time, without real sleeps."""

from __future__ import annotations

from pbxcheck.sip.message import make_request, make_response, to_bytes
from pbxcheck.sip.parser import parse_message
from pbxcheck.sip.sync import BlockingEndpoint


class FakeConn:
    transport = "UDP"
    local = ("10.0.0.1", 5060)
    remote = ("10.0.0.2", 7048)

    def __init__(self, answer_after: int | None = None) -> None:
        self.now = 0.0
        self.sent: list[tuple[float, bytes]] = []
        self.answer_after = answer_after  # answer 200 to the n-th send
        self.queue: list[bytes] = []

    def clock(self) -> float:
        return self.now

    def send(self, data: bytes) -> None:
        self.sent.append((self.now, data))
        if self.answer_after is not None and len(self.sent) == self.answer_after:
            req = parse_message(data)
            self.queue.append(to_bytes(make_response(req, 200, to_tag="t")))  # type: ignore[arg-type]

    def recv(self, timeout: float | None = None) -> bytes | None:
        if self.queue:
            return self.queue.pop(0)
        self.now += timeout or 0.0
        return None


def _req(method: str) -> object:
    return make_request(
        method,
        "sip:2002@10.0.0.2",
        from_="<sip:2001@x>;tag=a",
        to="<sip:2002@x>",
        call_id="c",
        cseq=1,
        via="SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsync1",
    )


def test_invite_unanswered_7_sends_then_none() -> None:
    conn = FakeConn()
    sip = BlockingEndpoint(conn, clock=conn.clock)
    assert sip.request(_req("INVITE")) is None  # type: ignore[arg-type]
    assert [t for t, _ in conn.sent] == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert conn.now == 32.0


def test_answer_to_a_retransmission_ends_the_wait() -> None:
    conn = FakeConn(answer_after=3)
    sip = BlockingEndpoint(conn, clock=conn.clock)
    resp = sip.request(_req("REGISTER"))  # type: ignore[arg-type]
    assert resp is not None and resp.status == 200
    assert [t for t, _ in conn.sent] == [0, 0.5, 1.5]


def test_callers_timeout_bounds_the_wait() -> None:
    conn = FakeConn()
    sip = BlockingEndpoint(conn, clock=conn.clock)
    assert sip.request(_req("OPTIONS"), timeout=2.0) is None  # type: ignore[arg-type]
    assert conn.now == 2.0 and sip.engine.counts["client"] == 0
