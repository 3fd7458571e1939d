"""The engine's fast paths keep its rules: lazy responses (matched on the top Via's branch and CSeq,
parsed on first use), the builder's memoised client key, and completed non-INVITE client
transactions that keep only their key during Timer K."""

from __future__ import annotations

import gc
import weakref

import pytest

from pbxcheck.sip.engine import ClientTimedOut, Engine, IncomingResponse, StrayResponse, Unparseable
from pbxcheck.sip.errors import SipParseError
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.message import Request, make_response, to_bytes
from pbxcheck.sip.parser import parse_message, response_key
from pbxcheck.sip.register import make_register
from pbxcheck.sip.transaction import State, client_key

FLOW = Flow("UDP", ("10.0.0.1", 5060), ("10.0.0.2", 7048), lambda data: None)


def _register(cseq: int = 1) -> Request:
    return make_register("pbx.example", "2001", sent_by="10.0.0.1:5060", cseq=cseq, call_id="cid", from_tag="ft")


def _answer(req: Request, status: int, *, from_: str | None = None) -> bytes:
    resp = make_response(req, status, to_tag="tt")
    if from_ is not None:
        resp = type(resp)(resp.status, resp.reason, resp.headers.with_("From", from_))
    return to_bytes(resp)


def test_builder_key_is_the_parsed_key() -> None:
    req = _register()
    assert client_key(req) == client_key(parse_message(to_bytes(req)))
    assert response_key(parse_message(_answer(req, 200))) == client_key(req)


@pytest.mark.parametrize("lazy", [True, False])
def test_matching_response_is_passed_up_and_parses_on_use(lazy: bool) -> None:
    eng = Engine(lazy_responses=lazy)
    req = _register()
    handle = eng.send_request(req, FLOW, 0.0)
    (got,) = eng.receive(_answer(req, 200), FLOW, 0.1)
    assert isinstance(got, IncomingResponse) and got.handle is handle and got.response.status == 200
    assert ("from_" not in got.response.__dict__) is lazy  # lazy: not parsed until asked
    assert got.response.from_.tag == "ft" and got.response.to.tag == "tt"
    assert eng.client_state(handle) is State.COMPLETED


def test_malformed_from_matching_lazily_raises_only_when_read() -> None:
    req = _register()
    bad = _answer(req, 200, from_="<sip:2001@pbx.example")  # unterminated <
    lazy = Engine(lazy_responses=True)
    lazy.send_request(req, FLOW, 0.0)
    (got,) = lazy.receive(bad, FLOW, 0.1)
    assert isinstance(got, IncomingResponse)
    with pytest.raises(SipParseError):
        _ = got.response.from_
    strict = Engine()
    strict.send_request(req, FLOW, 0.0)
    (bad_event,) = strict.receive(bad, FLOW, 0.1)
    assert isinstance(bad_event, Unparseable)


def test_lazy_engine_parses_in_full_what_matches_nothing() -> None:
    eng = Engine(lazy_responses=True)
    eng.send_request(_register(1), FLOW, 0.0)
    other = _register(2)  # another branch: no transaction
    (stray,) = eng.receive(_answer(other, 200), FLOW, 0.1)
    assert isinstance(stray, StrayResponse) and "from_" in stray.response.__dict__
    (bad,) = eng.receive(_answer(other, 200, from_="<sip:x"), FLOW, 0.1)
    assert isinstance(bad, Unparseable)


@pytest.mark.parametrize("lazy", [True, False])
def test_completed_non_invite_keeps_only_its_key_and_absorbs_retransmissions(lazy: bool) -> None:
    eng = Engine(lazy_responses=lazy)
    req = _register()
    ok = _answer(req, 200)
    handle = eng.send_request(req, FLOW, 0.0)
    (got,) = eng.receive(ok, FLOW, 0.1)
    assert isinstance(got, IncomingResponse)
    assert eng.receive(ok, FLOW, 0.2) == []  # a retransmitted final during Timer K: absorbed
    assert eng.client_state(handle) is State.COMPLETED
    ref = weakref.ref(req)
    del req, handle, got
    gc.collect()
    assert ref() is None  # the engine holds neither the request nor the handle now
    assert eng.counts["client"] == 1
    eng.timer_fired(6.0)  # Timer K (T4 = 5 s over UDP)
    assert eng.counts["client"] == 0 and eng.receive(ok, FLOW, 6.1)[0].__class__ is StrayResponse


def test_timer_f_still_times_out_and_retransmissions_stay_exact() -> None:
    eng = Engine(lazy_responses=True)
    sent: list[float] = []
    handle = eng.send_request(_register(), FLOW, 0.0)
    now = 0.0
    sent += [now for _ in eng.data_to_send()]
    events = []
    while (deadline := eng.next_deadline()) is not None and deadline <= 40:
        now = deadline
        events += eng.timer_fired(now)
        sent += [now for _ in eng.data_to_send()]
    assert events == [ClientTimedOut(handle, "F")]
    assert 32.0 <= now < 32.0 + 1 / 64  # 64*T1, rounded up to the engine's 1/64 s tick at most
    assert sent[:5] == [0.0, 0.5, 1.5, 3.5, 7.5]  # Timer E: T1 doubling, exact (17.1.2.2)
