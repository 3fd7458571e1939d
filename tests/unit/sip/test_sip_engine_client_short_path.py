"""The engine's short path for non-INVITE client transactions (a request answered with a final
response before its first retransmission is kept as key, flow, bytes and timers, no machine)
against the same engine running every transaction on figure 6's table (``short_path=False``): the
same bytes out at the same times, the same events and states, for every script below."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from engine_scripts import register, steps  # tests/unit/sip is on sys.path (as engine_pair)

from pbxcheck.sip import engine as engine_module
from pbxcheck.sip.engine import ClientHandle, ClientTimedOut, Engine, Event, IncomingResponse
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.message import Request, make_request, make_response, to_bytes

T1 = 0.5


def _register(transport: str) -> Request:
    return register(transport, "z9hG4bK-client-1")


@dataclass
class Trace:
    lines: list[tuple[float, str]]


def _run(script: list[tuple[float, str, int]], transport: str, *, short_path: bool, lazy: bool) -> Trace:
    """``script``: (time, "send" | "answer" | "tick", status); "send" starts the REGISTER's client
    transaction, "answer" delivers a response with ``status`` to it, "tick" fires the timers due."""
    eng = Engine(t1=T1, short_path=short_path, lazy_responses=lazy)
    flow = Flow(transport, ("10.0.0.1", 5060), ("10.0.0.2", 7048), lambda d: None)
    req = _register(transport)
    trace = Trace([])
    handle: ClientHandle | None = None

    def note(now: float, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, IncomingResponse):
                trace.lines.append((now, f"response {e.response.status} to the handle: {e.handle is handle}"))
            elif isinstance(e, ClientTimedOut):
                trace.lines.append((now, f"timed out (Timer {e.timer}) {e.handle is handle}"))
            else:
                trace.lines.append((now, f"event {type(e).__name__}"))
        for out, _ in eng.data_to_send():
            trace.lines.append((now, "sent " + out.decode()))
        state = eng.client_state(handle) if handle is not None else None
        trace.lines.append((now, f"counts {eng.counts} state {state} next {eng.next_deadline()}"))

    for now, what, status in script:
        if what == "send":
            handle = eng.send_request(req, flow, now)
            note(now, [])
        elif what == "answer":
            resp = make_response(req, status, to_tag="tt")
            note(now, eng.receive(to_bytes(resp), flow, now))
        elif what == "forget":
            assert handle is not None
            eng.forget(handle)
            note(now, [])
        else:
            note(now, eng.timer_fired(now))
    return trace


# "time what [status]" steps, comma-separated
SCRIPTS = {
    "answered at once, the final resent in Completed, then after Timer K": (
        "0 send, 0.01 answer 401, 0.02 answer 401, 1 tick, 5.5 answer 401, 7 tick, 7.5 answer 200"
    ),
    "answered 200 at once": "0 send, 0.01 answer 200, 0.02 answer 100, 6 tick",
    "a provisional first, then the final": "0 send, 0.1 answer 100, 0.6 tick, 4.6 tick, 5 answer 200, 6 answer 200, 11 tick",
    "retransmitted by Timer E, then answered": "0 send, 0.5 tick, 1.5 tick, 2 answer 403, 2.1 answer 403, 8 tick",
    "never answered: Timer F": "0 send, 0.5 tick, 1.5 tick, 3.5 tick, 7.5 tick, 11.5 tick, 32 tick, 33 answer 200",
    "given up by the caller": "0 send, 0.2 forget, 0.5 tick, 0.6 answer 200, 40 tick",
}


_steps = steps


@pytest.mark.parametrize("lazy", [False, True], ids=["parsed", "lazy"])
@pytest.mark.parametrize("transport", ["UDP", "TCP"])
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_short_path_does_what_the_table_does(name: str, transport: str, lazy: bool) -> None:
    script = _steps(SCRIPTS[name])
    short = _run(script, transport, short_path=True, lazy=lazy)
    table = _run(script, transport, short_path=False, lazy=lazy)
    assert short.lines == table.lines


def test_answered_at_once_on_udp_is_sent_once_and_kept_for_timer_k() -> None:
    trace = _run(_steps(SCRIPTS["answered at once, the final resent in Completed, then after Timer K"]), "UDP",
                 short_path=True, lazy=True)  # fmt: skip
    assert [t for t, line in trace.lines if line.startswith("sent ")] == [0.0]
    assert [line for _, line in trace.lines if line.startswith("response")] == ["response 401 to the handle: True"]
    # Completed until Timer K (T4 = 5 s, on the next whole second): a late 200 then matches nothing
    assert any(t == 7.0 and "'client': 0" in line for t, line in trace.lines)
    assert trace.lines[-2] == (7.5, "event StrayResponse")


def test_client_short_path_turns_itself_off_when_figure_6_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine_module._answered_rows()
    table = dict(engine_module.CLIENT_NON_INVITE)
    S, K = engine_module.State, engine_module.Kind
    table[(S.COMPLETED, K.FINAL)] = (S.COMPLETED, ())  # a row the short path does not know of
    monkeypatch.setattr(engine_module, "CLIENT_NON_INVITE", table)
    assert not engine_module._answered_rows()


@pytest.mark.parametrize("short_path", [True, False])
def test_timers_of_short_and_table_transactions_fire_in_one_deadline_order(short_path: bool) -> None:
    """The short path's Timer E waits in a FIFO of its own, the table's timers in the heap: one
    ``timer_fired`` late enough for several still runs them by deadline, whichever holds them."""
    eng = Engine(t1=T1, short_path=short_path)
    flow = Flow("UDP", ("10.0.0.1", 5060), ("10.0.0.2", 7048), lambda d: None)

    def request(method: str, branch: str) -> Request:
        return make_request(
            method, "sip:2002@pbx.example", from_="<sip:2001@pbx.example>;tag=ft", to="<sip:2002@pbx.example>",
            call_id=f"cid-{branch}", cseq=1, via=f"SIP/2.0/UDP 10.0.0.1:5060;branch={branch}",
        )  # fmt: skip

    eng.send_request(request("INVITE", "z9hG4bK-inv"), flow, 0.0)  # Timer A at 0.5, 1.5, 3.5 (heap)
    eng.send_request(request("OPTIONS", "z9hG4bK-opt"), flow, 0.2)  # Timer E at 0.7, then 1.7 (FIFO, then heap)
    eng.data_to_send()
    eng.timer_fired(2.0)
    sent = [data.split(b" ", 1)[0].decode() for data, _ in eng.data_to_send()]
    assert sent == ["INVITE", "OPTIONS", "INVITE", "OPTIONS"]  # 0.5 A, 0.7 E, 1.5 A, 1.7 E
