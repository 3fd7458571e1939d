"""The suites prove themselves: with each HTTP fault switch of the reference central on, the run fails
on every clause that fault declares (hardening ones: a medium-or-worse finding), and on no other.

Each fault runs only the suite modules that check its clauses (found from the ``clause`` markers),
so the other clauses checked in those modules are the control that the failure is not spread wide.
Runs go two at a time (this is a 2-core machine; each run is a central plus a pytest process).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pbxcheck import runner
from pbxcheck.bundled import bundled_dir
from pbxcheck.central.faults import HTTP_FAULTS as CENTRAL_HTTP_FAULTS
from pbxcheck.central.faults import FaultSwitch
from pbxcheck.checks.clauses import modules_marking
from pbxcheck.contract import CLAUSES

pytestmark = pytest.mark.slow

HTTP_FAULTS: list[FaultSwitch] = sorted(CENTRAL_HTTP_FAULTS.values(), key=lambda f: f.name)
SERIOUS = ("medium", "high", "critical")


def modules_for(clauses: tuple[str, ...]) -> list[str]:
    """The suite modules holding a check marked with any of ``clauses``; never none (an empty list
    would make the runner run every module, and the fault would seem to break unrelated clauses)."""
    found = modules_marking(bundled_dir("suites"), clauses)
    assert found, f"no suite module marks any of {clauses}"
    return found


@dataclass
class FaultRun:
    code: int
    table: dict[str, Any]
    output: str

    @property
    def failed(self) -> set[str]:
        return {cid for cid, row in self.table["clauses"].items() if row["status"] == "failed"}


def _run(fault: FaultSwitch, root: Path) -> FaultRun:
    reports = root / fault.name
    out = io.StringIO()
    code = runner.run(None, str(reports), faults=[fault.name], paths=modules_for(fault.clauses), out=out)
    path = reports / "clauses.json"
    table = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"clauses": {}}
    run = FaultRun(code, table, out.getvalue())
    table_file = os.environ.get("PBXCHECK_FAULT_TABLE")  # the fault -> failed clauses table, for notes
    if table_file:
        with open(table_file, "a", encoding="utf-8") as f:
            f.write(
                f"| {fault.name} | {' '.join(fault.clauses)} | {' '.join(sorted(run.failed)) or '-'} | "
                f"{' '.join(modules_for(fault.clauses))} |\n"
            )
    return run


def _selected(session: pytest.Session) -> set[str]:
    """The faults whose check this session runs (``-k classe5`` runs those faults' centrals only)."""
    names = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        fault = callspec.params.get("fault") if callspec is not None else None
        if isinstance(fault, FaultSwitch):
            names.add(fault.name)
    return names


@pytest.fixture(scope="module")
def fault_runs(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[str, Future[FaultRun]]]:
    """Every selected fault's run, started at once two at a time; each check waits only for its own."""
    root = tmp_path_factory.mktemp("faults")
    wanted = _selected(request.session)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {f.name: pool.submit(_run, f, root) for f in HTTP_FAULTS if f.name in wanted}
        yield futures
        for fut in futures.values():
            fut.cancel()


def test_every_http_clause_has_a_fault() -> None:
    """Each contract HTTP clause with a check can be broken on purpose (else nothing proves its check)."""
    broken = {c for f in HTTP_FAULTS for c in f.clauses}
    checked = {c for c in CLAUSES if not CLAUSES[c].sip and not CLAUSES[c].hardening and modules_for((c,))}
    assert not checked - broken, f"no fault switch breaks {sorted(checked - broken)}"


@pytest.mark.parametrize("fault", HTTP_FAULTS, ids=[f.name for f in HTTP_FAULTS])
def test_fault_fails_its_clause_only(fault: FaultSwitch, fault_runs: dict[str, Future[FaultRun]]) -> None:
    run = fault_runs[fault.name].result()
    unrelated = run.failed - set(fault.clauses)
    assert not unrelated, (
        f"{fault.name} breaks {fault.clauses}, but the run also failed {sorted(unrelated)}:\n"
        + "\n".join(f["message"] for c in unrelated for f in run.table["clauses"][c]["failures"])
    )
    hardening = [c for c in fault.clauses if CLAUSES[c].hardening]
    for cid in hardening:
        # Hardening clauses give findings, not failures: the fault must raise a serious finding.
        serious = [f for f in run.table["clauses"][cid]["findings"] if f["severity"] in SERIOUS]
        assert serious, f"{fault.name}: no medium-or-worse finding on {cid}\n{run.output[-3000:]}"
    if len(hardening) == len(fault.clauses):
        return
    assert run.code == 1, f"{fault.name}: exit {run.code}, expected 1\n{run.output[-3000:]}"
    missed = set(fault.clauses) - set(hardening) - run.failed  # exactly its clauses: each one goes red
    assert not missed, f"{fault.name}: {sorted(missed)} did not fail\n{run.output[-3000:]}"


def test_without_faults_no_serious_auth6_finding(tmp_path: Path) -> None:
    """The control for the hardening check above: the reference central does not enumerate."""
    out = io.StringIO()
    code = runner.run(
        None, str(tmp_path), paths=["test_auth.py::test_denials_do_not_enumerate_and_are_throttled"], out=out
    )
    table = json.loads((tmp_path / "clauses.json").read_text(encoding="utf-8"))
    assert code == 0, out.getvalue()[-3000:]
    assert not [f for f in table["clauses"]["AUTH-6"]["findings"] if f["severity"] in SERIOUS]
    # it does not throttle either, and a denial answered alike every time is not taken for throttling
    assert [f for f in table["clauses"]["AUTH-6"]["findings"] if "no throttling measured" in f["text"]]


def test_auth6_recognises_a_lockout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AUTH-6 throttling is measured: with the reference central's opt-in lockout on (5 denials from one IP
    lock it out for 3 s, the right credentials too) the check measures the lockout and gives no
    no-throttling finding; without it (the control above) the finding is there."""
    from pbxcheck.central.lockout import API_LOCKOUT_ENV

    monkeypatch.setenv(API_LOCKOUT_ENV, "5/30/3")  # the embedded central's process inherits it
    out = io.StringIO()
    code = runner.run(
        None, str(tmp_path), paths=["test_auth.py::test_denials_do_not_enumerate_and_are_throttled"], out=out
    )
    row = json.loads((tmp_path / "clauses.json").read_text(encoding="utf-8"))["clauses"]["AUTH-6"]
    assert code == 0, out.getvalue()[-3000:]
    seen = next(o["value"] for o in row["observations"] if o["what"] == "throttling")
    assert seen["verdict"].startswith("throttled: lockout"), seen
    assert not [f for f in row["findings"] if "no throttling" in f["text"]], row["findings"]
