"""The central as a process: started through the CLI, data and credentials kept across a restart
with a database file, and the dialer progressing on a sped-up clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pbxcheck.central.process import CentralProcess, CentralStartError
from pbxcheck.client import ApiClient


def test_restart_with_a_db_file_keeps_data_and_credentials(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    with CentralProcess(state_dir=tmp_path / "a", db=db) as first:
        with ApiClient(first) as api:
            assert api.call("insert", idcampanha="583", cliente="SURVIVOR", tel1="41189999").value == ["Status", "OK"]
            assert api.call("bloqueioclasse5", logincliente="teste", classe5acao="BLOQUEAR").value[1] == "BLOQUEADO"
    with CentralProcess(state_dir=tmp_path / "b", db=db) as second:
        assert (second.login, second.senha, second.token, second.foreign_token) == (
            first.login,
            first.senha,
            first.token,
            first.foreign_token,
        )
        assert [e.password for e in second.extensions] == [e.password for e in first.extensions]
        with ApiClient(second) as api:
            rows = api.call("statusdiscador", idcampanha="583").value
            assert sum(r["cliente"] == "SURVIVOR" for r in rows) == 1
            assert api.call("clicktocall", origem="3001", destino="1").value == ["Status", "Ramal Bloqueado"]


def test_without_a_db_file_each_start_is_fresh(tmp_path: Path) -> None:
    with CentralProcess(state_dir=tmp_path / "a") as first:
        pass
    with CentralProcess(state_dir=tmp_path / "b") as second:
        assert first.token != second.token


def test_unknown_fault_is_a_clear_start_error(tmp_path: Path) -> None:
    with pytest.raises(CentralStartError, match="unknown fault"):
        with CentralProcess(state_dir=tmp_path, faults=["no-such-fault"]):
            pass


def test_dialer_progression(tmp_path: Path) -> None:
    """Last digit of tel1 steers the outcome (dialer.py): 1 -> CONCLUIDO on try 1, 5 -> on try 3,
    8 -> EXCEDIDO after 5 tries. At clock speed 10 everything settles in under a second."""
    with CentralProcess(state_dir=tmp_path, clock_speed=10) as t, ApiClient(t) as api:
        for tel in ("41180001", "41180005", "41180008"):
            assert api.call("insert", idcampanha="900", cliente=f"DIALER {tel}", tel1=tel).value == ["Status", "OK"]
        seen: dict[str, list[tuple[str, str]]] = {}
        deadline = time.time() + 10
        while time.time() < deadline:
            rows = {
                r["numero"]: r
                for r in api.call("statusdiscador", idcampanha="900").value
                if r["cliente"].startswith("DIALER")
            }
            for tel, r in rows.items():
                states = seen.setdefault(tel, [])
                if not states or states[-1] != (r["status"], r["tentativas"]):
                    states.append((r["status"], r["tentativas"]))
            if all(s[-1][0] in ("CONCLUIDO", "EXCEDIDO") for s in seen.values()) and len(seen) == 3:
                break
            time.sleep(0.02)
        final = {tel: s[-1] for tel, s in seen.items()}
        assert final == {
            "41180001": ("CONCLUIDO", "1"),
            "41180005": ("CONCLUIDO", "3"),
            "41180008": ("EXCEDIDO", "5"),
        }, seen
        for states in seen.values():
            assert states[0] == ("AGUARDANDO", "0")
            assert {s for s, _ in states} <= {"AGUARDANDO", "Dialing", "Descartado", "CONCLUIDO", "EXCEDIDO"}
            assert all(int(n) <= 5 for _, n in states)
        assert ("Descartado", "4") in seen["41180008"]
        rows = {r["numero"]: r for r in api.call("statusdiscador", idcampanha="900").value}
        detail = api.call("statusdetalhado", idcampanha="900", idmailing=rows["41180005"]["id"]).value
        assert detail["statuschamada"] == "ANSWER" and int(detail["duracao"]) > 10
        assert detail["dialed_time"] == "3"
        assert api.call("statusdetalhado", idcampanha="900", idmailing=rows["41180008"]["id"]).value == []
        rec = api.recording(detail["gravacao"])
        assert len(rec.content) == int(detail["tamanho_gravacao"])


def test_central_stops_when_the_harness_is_killed(tmp_path: Path) -> None:
    """A harness killed with SIGKILL cannot stop its central; the central must notice and go."""
    script = textwrap.dedent(f"""
        import os, sys, time
        from pbxcheck.central.process import CentralProcess
        c = CentralProcess(state_dir={str(tmp_path)!r})
        c.start()
        print(c.proc.pid, flush=True)
        time.sleep(60)
    """)
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        central_pid = int(harness.stdout.readline())
        os.kill(central_pid, 0)  # alive while the harness is
        harness.send_signal(signal.SIGKILL)
        harness.wait(5)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(central_pid, 0)
            except ProcessLookupError:
                return
            # the orphan is re-parented to us or to init; reap it if it is ours
            try:
                os.waitpid(central_pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.2)
        os.kill(central_pid, signal.SIGKILL)
        pytest.fail("the central outlived its killed harness by 15 s")
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(5)
        harness.stdout.close()  # the pipe is ours to close (ResourceWarning under -W error)
