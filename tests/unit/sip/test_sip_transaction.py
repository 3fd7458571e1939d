"""Transactions: every (state, event) pair of the four tables, timer behaviour, matching keys."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from pbxcheck.sip.errors import TransactionError
from pbxcheck.sip.events import (
    Action,
    CancelTimer,
    Event,
    RequestIn,
    RequestReceived,
    ResponseIn,
    ResponseReceived,
    Send,
    SendResponse,
    StartTimer,
    Timeout,
    TimerFired,
    TransactionTerminated,
    TransportError,
    TransportFailed,
)
from pbxcheck.sip.message import Request, Response, make_request, make_response
from pbxcheck.sip.parser import parse_message
from pbxcheck.sip.transaction import (
    CLIENT_INVITE,
    CLIENT_NON_INVITE,
    SERVER_INVITE,
    SERVER_NON_INVITE,
    ClientTransaction,
    ServerTransaction,
    Table,
    cancel_target_key,
    client_key,
    make_ack,
    make_cancel,
    server_key,
)


def _req(method: str = "INVITE", branch: str = "z9hG4bKabc123") -> Request:
    return make_request(
        method,
        "sip:100@pbx.example",
        from_="<sip:200@pbx.example>;tag=ft",
        to="<sip:100@pbx.example>",
        call_id="cid-1",
        cseq=5,
        via=f"SIP/2.0/UDP 10.0.0.2:5062;branch={branch}",
        headers=[("Route", "<sip:proxy.example;lr>")],
    )


def _resp(req: Request, status: int) -> Response:
    return make_response(req, status, to_tag="tt")


def _event(kind: str, req: Request) -> Event:
    if kind.startswith("timer_"):
        return TimerFired(kind[6:])
    if kind == "transport_error":
        return TransportError("unreachable")
    if kind in ("1xx", "2xx", "3xx-6xx"):
        return ResponseIn(_resp(req, {"1xx": 180, "2xx": 200, "3xx-6xx": 486}[kind]))
    if kind.startswith("send_"):
        return SendResponse(_resp(req, {"send_1xx": 180, "send_2xx": 200, "send_3xx-6xx": 486}[kind]))
    if kind == "ack":
        return RequestIn(make_ack(req, _resp(req, 486)))
    assert kind == "request"
    return RequestIn(req)


KINDS = {
    "client_invite": (CLIENT_INVITE, "INVITE", True),
    "client_non_invite": (CLIENT_NON_INVITE, "OPTIONS", True),
    "server_invite": (SERVER_INVITE, "INVITE", False),
    "server_non_invite": (SERVER_NON_INVITE, "REGISTER", False),
}
CLIENT_ALPHABET = ("1xx", "2xx", "3xx-6xx", "transport_error") + tuple(f"timer_{t}" for t in "ABDEFK")
SERVER_ALPHABET = ("request", "ack", "send_1xx", "send_2xx", "send_3xx-6xx", "transport_error") + tuple(
    f"timer_{t}" for t in "GHIJ"
)


def _paths(table: Table) -> dict[str, list[str]]:
    """Shortest event sequence from Init to every state, found by walking the table."""
    paths: dict[str, list[str]] = {"Init": []}
    queue = deque(["Init"])
    while queue:
        state = queue.popleft()
        for (s, kind), (new, _) in table.items():
            if s == state and new not in paths:
                paths[new] = [*paths[state], kind]
                queue.append(new)
    return paths


def _machine(kind: str, req: Request) -> ClientTransaction | ServerTransaction:
    is_client = KINDS[kind][2]
    return ClientTransaction(req, reliable=False) if is_client else ServerTransaction(req, reliable=False)


_OP_ACTION = {
    "send_request": Send,
    "send_ack": Send,
    "send_response": Send,
    "send_trying": Send,
    "pass_request": RequestReceived,
    "pass_response": ResponseReceived,
    "timeout": Timeout,
    "transport_failed": TransportFailed,
    "terminated": TransactionTerminated,
}


def _pairs() -> list[tuple[str, str, str]]:
    out = []
    for kind, (table, _, is_client) in KINDS.items():
        states = {s for s, _ in table} - {"Init"}
        for state in sorted(states | {"Terminated"}):
            for event in CLIENT_ALPHABET if is_client else SERVER_ALPHABET:
                out.append((kind, state, event))
    return out


@pytest.mark.parametrize("kind, state, event", _pairs())
def test_every_state_event_pair(kind: str, state: str, event: str) -> None:
    table, method, _ = KINDS[kind]
    req = _req(method)
    machine = _machine(kind, req)
    machine.start()
    for step in _paths(table)[state][1:]:
        machine.handle(_event(step, req))
    assert machine.state == state
    had_response = machine.last_response is not None
    actions = machine.handle(_event(event, req))
    entry = table.get((state, event))
    if entry is None:  # not in the table: ignored, nothing happens
        assert actions == [] and machine.state == state
        return
    new_state, ops = entry
    assert machine.state == new_state
    # the non-timer actions come out in the order of the table's operations
    expected: list[type] = []
    for op in ops:
        verb = str(op).partition(":")[0]
        if verb in _OP_ACTION:
            expected.append(_OP_ACTION[verb])
        elif verb == "resend_response" and had_response:
            expected.append(Send)
    got = [type(a) for a in actions if not isinstance(a, StartTimer | CancelTimer)]
    assert got == expected
    timers = {str(op).partition(":")[2] for op in ops if str(op).startswith(("start:", "backoff:", "t2:"))}
    assert {a.name for a in actions if isinstance(a, StartTimer)} == timers


def test_tables_only_use_known_states_and_events() -> None:
    for table, _, is_client in KINDS.values():
        alphabet = set(CLIENT_ALPHABET if is_client else SERVER_ALPHABET) | {"start"}
        assert {e for _, e in table} <= alphabet
        assert set(_paths(table)) == {s for s, _ in table} | {"Terminated"}  # every state reachable


# --- timer behaviour over an unreliable transport ------------------------------------------------


def test_invite_client_unreliable_retransmits_with_doubling_then_acks_failure() -> None:
    req = _req()
    tx = ClientTransaction(req, reliable=False)
    assert tx.start() == [Send(req), StartTimer("A", 0.5), StartTimer("B", 32.0)]
    intervals = []
    for _ in range(5):
        acts = tx.handle(TimerFired("A"))
        assert acts[0] == Send(req)
        intervals.append(next(a.seconds for a in acts if isinstance(a, StartTimer)))
    assert intervals == [1.0, 2.0, 4.0, 8.0, 16.0]  # Timer A is not capped at T2
    assert tx.handle(ResponseIn(_resp(req, 180))) == [
        CancelTimer("A"),
        CancelTimer("B"),
        ResponseReceived(_resp(req, 180)),
    ]
    busy = _resp(req, 486)
    acts = tx.handle(ResponseIn(busy))
    assert acts[0] == ResponseReceived(busy) and acts[-1] == StartTimer("D", 32.0)
    ack = acts[1]
    assert isinstance(ack, Send) and isinstance(ack.message, Request)
    a = ack.message
    assert (a.method, a.uri, a.cseq, a.call_id) == ("ACK", req.uri, (5, "ACK"), "cid-1")
    assert a.to.tag == "tt" and a.from_ == req.from_ and [v.branch for v in a.via] == [req.branch]
    assert a.headers.get_all("Route") == ["<sip:proxy.example;lr>"]
    assert tx.handle(ResponseIn(busy)) == [ack]  # retransmitted final: ACK again, TU not bothered
    assert tx.handle(TimerFired("D")) == [TransactionTerminated(tx.key)] and tx.terminated
    assert tx.handle(ResponseIn(busy)) == []


def test_invite_client_timer_b() -> None:
    tx = ClientTransaction(_req(), reliable=False)
    tx.start()
    assert tx.handle(TimerFired("B")) == [CancelTimer("A"), Timeout("B"), TransactionTerminated(tx.key)]


def test_invite_client_reliable_has_no_a_and_zero_d() -> None:
    req = _req()
    tx = ClientTransaction(req, reliable=True, t1=0.25)
    assert tx.start() == [Send(req), StartTimer("B", 16.0)]
    acts = tx.handle(ResponseIn(_resp(req, 503)))
    assert [type(a) for a in acts] == [CancelTimer, ResponseReceived, Send, TransactionTerminated]
    ok = ClientTransaction(req, reliable=True)
    ok.start()
    assert [type(a) for a in ok.handle(ResponseIn(_resp(req, 200)))] == [
        CancelTimer,
        ResponseReceived,
        TransactionTerminated,
    ]


def test_non_invite_client_timer_e_caps_at_t2_and_resets_in_proceeding() -> None:
    req = _req("REGISTER")
    tx = ClientTransaction(req, reliable=False)
    assert tx.start() == [Send(req), StartTimer("E", 0.5), StartTimer("F", 32.0)]
    seen = [next(a.seconds for a in tx.handle(TimerFired("E")) if isinstance(a, StartTimer)) for _ in range(5)]
    assert seen == [1.0, 2.0, 4.0, 4.0, 4.0]
    tx.handle(ResponseIn(_resp(req, 100)))
    assert tx.handle(TimerFired("E")) == [Send(req), StartTimer("E", 4.0)]
    ok = _resp(req, 200)
    assert tx.handle(ResponseIn(ok)) == [CancelTimer("E"), CancelTimer("F"), ResponseReceived(ok), StartTimer("K", 5.0)]
    assert tx.handle(ResponseIn(ok)) == []  # absorbed in Completed
    assert tx.handle(TimerFired("K")) == [TransactionTerminated(tx.key)]


def test_non_invite_client_timeout_and_transport_error() -> None:
    tx = ClientTransaction(_req("OPTIONS"), reliable=False)
    tx.start()
    assert tx.handle(TimerFired("F")) == [CancelTimer("E"), Timeout("F"), TransactionTerminated(tx.key)]
    tx2 = ClientTransaction(_req("OPTIONS"), reliable=True)
    tx2.start()
    assert tx2.handle(TransportError("reset")) == [
        CancelTimer("F"),
        TransportFailed("reset"),
        TransactionTerminated(tx2.key),
    ]


def test_invite_server_unreliable() -> None:
    req = _req()
    tx = ServerTransaction(req, reliable=False)
    acts = tx.start()
    assert [type(a) for a in acts] == [Send, RequestReceived]
    trying = acts[0]
    assert isinstance(trying, Send) and isinstance(trying.message, Response) and trying.message.status == 100
    assert tx.handle(RequestIn(req)) == [trying]  # retransmitted INVITE: last provisional again
    busy = _resp(req, 486)
    assert tx.handle(SendResponse(busy)) == [Send(busy), StartTimer("G", 0.5), StartTimer("H", 32.0)]
    g = [next(a.seconds for a in tx.handle(TimerFired("G")) if isinstance(a, StartTimer)) for _ in range(4)]
    assert g == [1.0, 2.0, 4.0, 4.0]
    assert tx.handle(RequestIn(req)) == [Send(busy)]
    ack = make_ack(req, busy)
    assert server_key(ack) == tx.key
    assert tx.handle(RequestIn(ack)) == [CancelTimer("G"), CancelTimer("H"), StartTimer("I", 5.0)]
    assert tx.handle(RequestIn(ack)) == [] and tx.state == "Confirmed"
    assert tx.handle(TimerFired("I")) == [TransactionTerminated(tx.key)]


def test_invite_server_timer_h_and_2xx() -> None:
    req = _req()
    tx = ServerTransaction(req, reliable=False, auto_trying=False)
    assert tx.start() == [RequestReceived(req)]
    assert tx.handle(RequestIn(req)) == []  # nothing sent yet, nothing to repeat
    tx.handle(SendResponse(_resp(req, 404)))
    assert tx.handle(TimerFired("H")) == [CancelTimer("G"), Timeout("H"), TransactionTerminated(tx.key)]
    tx2 = ServerTransaction(req, reliable=True)
    tx2.start()
    ok = _resp(req, 200)
    assert tx2.handle(SendResponse(ok)) == [Send(ok), TransactionTerminated(tx2.key)]
    tx3 = ServerTransaction(req, reliable=True)
    tx3.start()
    tx3.handle(SendResponse(_resp(req, 486)))
    assert tx3.handle(RequestIn(make_ack(req, _resp(req, 486)))) == [CancelTimer("H"), TransactionTerminated(tx3.key)]


def test_non_invite_server() -> None:
    req = _req("REGISTER")
    tx = ServerTransaction(req, reliable=False)
    assert tx.start() == [RequestReceived(req)]
    assert tx.handle(RequestIn(req)) == []
    ok = _resp(req, 200)
    assert tx.handle(SendResponse(ok)) == [Send(ok), StartTimer("J", 32.0)]
    assert tx.handle(RequestIn(req)) == [Send(ok)]
    assert tx.handle(SendResponse(_resp(req, 500))) == []  # later finals discarded
    assert tx.handle(TimerFired("J")) == [TransactionTerminated(tx.key)]
    tcp = ServerTransaction(req, reliable=True)
    tcp.start()
    assert tcp.handle(SendResponse(ok)) == [Send(ok), TransactionTerminated(tcp.key)]


# --- keys and misuse ------------------------------------------------------------------------------


def test_client_key_matches_responses_but_not_cancel_responses() -> None:
    req = _req()
    tx = ClientTransaction(req, reliable=False)
    assert client_key(_resp(req, 180)) == tx.key
    cancel = make_cancel(req)
    assert (
        cancel.branch == req.branch
        and cancel.cseq == (5, "CANCEL")
        and cancel.headers.get("To") == req.headers.get("To")
    )
    assert client_key(_resp(cancel, 200)) != tx.key


def test_server_keys_rfc3261_and_rfc2543_fallback() -> None:
    req = _req()
    k = server_key(req)
    assert k[0] == "3261" and server_key(_req("INVITE", "z9hG4bKother")) != k
    assert cancel_target_key(make_cancel(req)) == k and server_key(make_cancel(req)) != k
    data = (Path(__file__).resolve().parents[3] / "fixtures" / "rfc4475" / "badbranch.dat").read_bytes()
    bad = parse_message(data)
    assert isinstance(bad, Request)
    k2 = server_key(bad)
    assert k2[0] == "2543" and k2[-1] == "OPTIONS"  # the bare cookie is not trusted as a branch
    old = _req("INVITE", "1234")
    assert server_key(old)[0] == "2543" and server_key(make_ack(old, _resp(old, 486))) == server_key(old)
    tx = ServerTransaction(bad, reliable=False)
    assert tx.start() == [RequestReceived(bad)] and tx.key == k2


def test_misuse_raises() -> None:
    req = _req()
    ack = make_ack(req, _resp(req, 486))
    with pytest.raises(TransactionError):
        ClientTransaction(ack, reliable=False)
    with pytest.raises(TransactionError):
        ServerTransaction(ack, reliable=False)
    tx = ClientTransaction(req, reliable=False)
    with pytest.raises(TransactionError):
        tx.handle(TimerFired("A"))
    tx.start()
    with pytest.raises(TransactionError):
        tx.start()
    with pytest.raises(TransactionError):
        tx.handle(RequestIn(req))
    stx = ServerTransaction(req, reliable=False)
    stx.start()
    with pytest.raises(TransactionError):
        stx.handle(ResponseIn(_resp(req, 200)))


def _all_actions_typed(actions: list[Action]) -> bool:
    return all(a.__class__.__module__ == "pbxcheck.sip.events" for a in actions)


def test_actions_are_frozen_event_dataclasses() -> None:
    tx = ClientTransaction(_req(), reliable=False)
    acts = tx.start()
    assert _all_actions_typed(acts)
    with pytest.raises(AttributeError):
        acts[1].seconds = 3  # type: ignore[union-attr, misc]
