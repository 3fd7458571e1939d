"""The engine's short path for non-INVITE server transactions (a request answered with a final
response at once is kept as key, flow, bytes and Timer J, no machine) against the same engine
running every transaction on figure 8's table (``short_path=False``): the same bytes out at the same
times, the same events, the same state left, for every script below."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from engine_scripts import register, steps  # tests/unit/sip is on sys.path (as engine_pair)

from pbxcheck.sip import engine as engine_module
from pbxcheck.sip.engine import Engine, Event, IncomingRequest
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.message import Request, make_response, to_bytes

T1 = 0.5


def _register(transport: str, branch: str = "z9hG4bK-short-1") -> bytes:
    return to_bytes(register(transport, branch))


@dataclass
class Trace:
    """What one engine did under a script: every (time, what) in order."""

    lines: list[tuple[float, str]]
    requests: list[Request]


def _run(script: list[tuple[float, str, int]], transport: str, *, short_path: bool) -> Trace:
    """``script``: (time, "recv" | "answer" | "tick", status); "recv" delivers the REGISTER, "answer"
    answers the last request passed up with ``status``, "tick" fires the timers due."""
    eng = Engine(t1=T1, short_path=short_path)
    flow = Flow(transport, ("10.0.0.2", 7048), ("10.0.0.1", 5060), lambda d: None)
    data = _register(transport)
    trace = Trace([], [])

    def note(now: float, events: list[Event]) -> None:
        for e in events:
            assert isinstance(e, IncomingRequest)
            trace.requests.append(e.request)
            trace.lines.append((now, f"event {e.request.method}"))
        for out, _ in eng.data_to_send():
            trace.lines.append((now, "sent " + out.decode()))
        trace.lines.append((now, f"counts {eng.counts} next {eng.next_deadline()}"))

    for now, what, status in script:
        if what == "recv":
            note(now, eng.receive(data, flow, now))
        elif what == "answer":
            req = trace.requests[-1]
            eng.send_response(req, make_response(req, status, to_tag="tt"), flow, now)
            note(now, [])
        else:
            note(now, eng.timer_fired(now))
    return trace


# "time what [status]" steps, comma-separated
SCRIPTS = {
    "answered at once, resent in Completed, then after Timer J": (
        "0 recv, 0 answer 200, 0.5 recv, 1.5 recv, 20 tick, 31.9 recv, 33 tick, 40 recv, 40 answer 401, 41 recv"
    ),
    # a second answer in Completed is ignored
    "resent while Trying (absorbed), then answered": "0 recv, 0.5 recv, 1 answer 403, 1.5 recv, 1.6 answer 200, 1.7 recv, 40 tick",
    "provisional first, then the final": (
        "0 recv, 0.1 answer 100, 0.5 recv, 2 answer 200, 2.5 recv, 2.6 answer 180, 40 tick, 40.1 recv"
    ),
    "never answered: forgotten after 64*T1": "0 recv, 1 recv, 40 tick, 40.5 recv",
}


_steps = steps


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_short_path_does_what_the_table_does(name: str, transport: str) -> None:
    script = _steps(SCRIPTS[name])
    short = _run(script, transport, short_path=True)
    table = _run(script, transport, short_path=False)
    assert short.lines == table.lines


def test_retransmission_in_completed_gets_the_same_bytes_on_udp() -> None:
    trace = _run(_steps(SCRIPTS["answered at once, resent in Completed, then after Timer J"]), "UDP", short_path=True)
    sent = [(t, line) for t, line in trace.lines if line.startswith("sent ")]
    assert [t for t, _ in sent] == [0.0, 0.5, 1.5, 31.9, 40.0, 41.0]
    assert len({line for t, line in sent if t < 32}) == 1  # the one 200, byte for byte
    assert sent[-1][1].startswith("sent SIP/2.0 401") and sent[-2][1] == sent[-1][1]
    # one request passed up before Timer J, a new transaction after it
    assert [t for t, line in trace.lines if line.startswith("event ")] == [0.0, 40.0]


def test_reliable_transport_keeps_nothing_once_answered() -> None:
    trace = _run(_steps("0 recv, 0 answer 200, 0.1 recv"), "TCP", short_path=True)
    assert [t for t, line in trace.lines if line.startswith("event ")] == [0.0, 0.1]  # Timer J is zero
    assert trace.lines[3][1].startswith("counts {'client': 0, 'server': 0")


def test_short_path_turns_itself_off_when_figure_8_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine_module._answered_at_once_rows()
    table = dict(engine_module.SERVER_NON_INVITE)
    state, _ = table[(engine_module.State.COMPLETED, engine_module.Kind.REQUEST)]
    table[(engine_module.State.COMPLETED, engine_module.Kind.REQUEST)] = (state, ())
    monkeypatch.setattr(engine_module, "SERVER_NON_INVITE", table)
    assert not engine_module._answered_at_once_rows()
