"""The audit's phases around one in-process reference central (SIP side off: a client audit is HTTP).

1. ``normal``: the command against the audit central, every request recorded.
2. ``impostor`` (CL-TLS-2): again, API_URL pointing at a server whose certificate API_CA did not sign.
3. ``chaos-<kind>`` (CL-ERR-1): once per wrong answer (denial, Requisicao Invalida, HTML 500,
   timeout) given to every insert (to every call, for a client that never inserts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from .. import contract as C
from .. import signals
from ..central.process import CentralThread
from ..central.server import Central, CentralConfig
from ..redact import Redactor
from .command import CommandRun, run_command
from .history import add_operator_events
from .impostor import Impostor
from .recorder import Chaos, Recorder
from .verdicts import CHAOS_PREFIX, IMPOSTOR_PHASE, NORMAL, Evidence


@contextmanager
def audit_central(recorder: Recorder) -> Iterator[Central]:
    """The reference central on a thread of this process, its apps wrapped by ``recorder``."""
    config = CentralConfig(api_port=0, plain_port=0, sip_port=0, ws_port=0, ws_plain_port=0, wrap_app=recorder.wrap)
    thread = CentralThread(config, services=[])
    with thread as central:
        assert central.store is not None
        store = central.store
        thread.call(lambda: add_operator_events(store))  # the store belongs to the loop's thread
        yield central


Say = Callable[[str], None]
LOOP_ENOUGH = 200  # refused calls in one chaos run: a retry loop is plain, the run is stopped


def run_phases(
    argv: Sequence[str],
    env: dict[str, str],
    recorder: Recorder,
    *,
    timeout: float,
    redactor: Redactor,
    out: TextIO | None,
    say: Say,
) -> Evidence:
    """Every phase in turn; after a normal run that made no call at all, none of the others."""
    runs: dict[str, CommandRun] = {}

    def run(phase: str, extra: dict[str, str] | None = None, enough: Callable[[], bool] | None = None) -> CommandRun:
        recorder.phase = phase
        result = run_command(
            argv, {**env, **(extra or {})}, phase=phase, timeout=timeout, redactor=redactor, out=out, enough=enough
        )
        runs[phase] = result
        calls = len(recorder.exchanges(phase))
        ended = f"stopped after {result.seconds:.1f} s" if result.timed_out else f"exit {result.exit_code}"
        say(f"phase {phase}: {ended}, {calls} request(s) to the audit central")
        return result

    run(NORMAL)
    ev = Evidence(runs, recorder.exchanges())
    if not ev.exchanges:
        return ev
    with Impostor(IMPOSTOR_PHASE) as imp:
        run(IMPOSTOR_PHASE, {"API_URL": imp.url})
    say(
        f"  impostor: {imp.connections} connection(s), {imp.handshakes} handshake(s) accepted,"
        f" {len(imp.exchanges)} request(s) received"
    )
    inserted = any(e.acao == C.Acao.INSERT.value for e in recorder.exchanges(NORMAL))
    recorder.chaos_acoes = frozenset({C.Acao.INSERT.value}) if inserted else None
    try:
        for kind in Chaos:
            recorder.chaos = kind
            run(CHAOS_PREFIX + kind.value, enough=lambda: len(recorder.exchanges(recorder.phase)) > LOOP_ENOUGH)
    finally:
        recorder.chaos = None
    return Evidence(
        runs,
        recorder.exchanges(),
        impostor=list(imp.exchanges),
        impostor_connections=imp.connections,
        impostor_handshakes=imp.handshakes,
        impostor_refusals=list(imp.refusals),
    )


def serve_until_interrupted(recorder: Recorder, say: Say) -> Evidence:
    """--serve: the central stays up, recording, until Ctrl-C (SIGTERM, SIGHUP)."""
    recorder.phase = NORMAL
    with signals.interrupts() as seen:
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            say(f"{seen.name}: judging what was recorded")
    return Evidence({}, recorder.exchanges())
