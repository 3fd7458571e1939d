"""The SIP probes prove themselves: with each SIP fault switch of the reference central on, the probes
fail on the clause that fault breaks, and on no other.

Each fault runs only the probe modules that check its clauses (found from the ``clause`` markers), so
the other clauses checked in those modules are the control. The central's target file is given two
additions, as a real operator's would be:

* ``[pins] "SIP-NAT-1.same-ip-port" = "collision"``: the document says two devices behind one IP and
  port conflict; SIP-NAT-1 is [unspecified], so only a pin makes the probe insist on it;
* nothing in ``[findings] fail_on``: SIP-SEC-1 is hardening, its results are findings. A SIP-SEC-1
  fault is proved by a *critical* finding that the healthy central does not produce (a critical finding
  is what fails the run when the target lists SIP-SEC-1 under fail_on, which one run also shows).

Runs go four at a time: the probes mostly wait on the network, so a 2-core machine keeps up.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pbxcheck import runner
from pbxcheck.bundled import bundled_dir
from pbxcheck.central.faults import FAULTS, FaultSwitch
from pbxcheck.checks.clauses import modules_marking
from pbxcheck.contract import CLAUSES
from pbxcheck.target import dump_target

pytestmark = pytest.mark.slow

NAT_PIN = {"SIP-NAT-1.same-ip-port": "collision"}


def probe_modules(clauses: tuple[str, ...] | None = None) -> list[str]:
    """The sip_probes modules holding a check marked with any of ``clauses`` (all of them for None)."""
    found = modules_marking(bundled_dir("sip_probes"), clauses)
    assert found, f"no probe module marks any of {clauses}"
    return found


def _sip_fault(f: FaultSwitch) -> bool:
    try:
        from pbxcheck.central.sip.faults import SIP_FAULTS
    except ImportError:
        return False
    return f.name in {name for name, _, _ in SIP_FAULTS}


SIP_FAULT_LIST: list[FaultSwitch] = sorted((f for f in FAULTS.values() if _sip_fault(f)), key=lambda f: f.name)


@dataclass
class ProbeRun:
    code: int
    table: dict[str, Any]
    output: str
    leaked: list[str]  # files (or "terminal") where a secret of the target showed up

    @property
    def rows(self) -> dict[str, Any]:
        return self.table.get("clauses", {})

    @property
    def failed(self) -> set[str]:
        return {cid for cid, row in self.rows.items() if row["status"] == "failed"}

    def critical(self, clause: str) -> list[str]:
        return [f["text"] for f in self.rows.get(clause, {}).get("findings", []) if f["severity"] == "critical"]

    def ran(self, clause: str) -> bool:
        return self.rows.get(clause, {}).get("status", "not-run") not in ("not-run", "not-applicable", "blocked")


def run_probes(
    root: Path, name: str, faults: list[str], modules: list[str], *, fail_on: tuple[str, ...] = ()
) -> ProbeRun:
    from pbxcheck.central.process import CentralProcess

    reports = root / name
    reports.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    with CentralProcess(faults=faults) as target:
        pinned = target.with_(pins={**target.pins, **NAT_PIN}, fail_on_findings=fail_on, path=None)
        path = reports / "target.toml"
        path.write_text(dump_target(pinned), encoding="utf-8")
        code = runner.run(str(path), str(reports), paths=modules, out=out)
        secrets = [s.encode() for s in target.secrets]
    path.unlink()  # the one file that holds the secrets on purpose
    leaked = [str(p) for p in reports.rglob("*") if p.is_file() and any(s in p.read_bytes() for s in secrets)]
    if any(s.decode() in out.getvalue() for s in secrets):
        leaked.append("terminal")
    table_path = reports / "clauses.json"
    table = json.loads(table_path.read_text(encoding="utf-8")) if table_path.exists() else {"clauses": {}}
    return ProbeRun(code, table, out.getvalue(), leaked)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ProbeRun]:
    root = tmp_path_factory.mktemp("sipfaults")
    jobs: dict[str, tuple[list[str], list[str], tuple[str, ...]]] = {
        "baseline": ([], probe_modules(), ()),
    }
    for f in SIP_FAULT_LIST:
        jobs[f.name] = ([f.name], probe_modules(f.clauses), ())
    torture = "crash-on-torture"
    if torture in FAULTS:
        jobs["crash-on-torture+fail-on"] = ([torture], probe_modules(("SIP-SEC-1",)), ("SIP-SEC-1",))
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            name: pool.submit(run_probes, root, name, faults, mods, fail_on=fail_on)
            for name, (faults, mods, fail_on) in jobs.items()
        }
        return {name: fut.result() for name, fut in futures.items()}


def test_every_sip_clause_has_a_fault_and_a_probe() -> None:
    if not SIP_FAULT_LIST:
        pytest.fail("the reference central has no SIP fault switches (central/sip/faults.py)")
    sip_clauses = {c for c in CLAUSES if CLAUSES[c].sip and probe_modules((c,))}
    broken = {c for f in SIP_FAULT_LIST for c in f.clauses}
    unbroken = sorted(sip_clauses - broken - {"RAM-3"})  # RAM-3's GRAVACAO is REC-1's recording faults' business
    assert not unbroken, f"no SIP fault switch breaks {unbroken}"


def test_healthy_central_passes_every_sip_probe(runs: dict[str, ProbeRun]) -> None:
    r = runs["baseline"]
    assert not r.failed, f"the healthy central fails {sorted(r.failed)}\n{r.output[-6000:]}"
    assert not r.critical("SIP-SEC-1"), r.critical("SIP-SEC-1")
    for c in (
        "SIP-REG-1",
        "SIP-REG-2",
        "SIP-REG-3",
        "SIP-INV-1",
        "SIP-INV-2",
        "SIP-NAT-1",
        "SIP-WS-1",
        "C2C-2",
        "RAM-2",
        "RAM-3",
        "C5-1",
    ):
        assert r.ran(c), f"{c} did not run against the reference central\n{r.output[-3000:]}"
    assert r.code == runner.EXIT_OK, r.output[-4000:]


@pytest.mark.parametrize("fault", [f.name for f in SIP_FAULT_LIST])
def test_fault_fails_its_clause_only(runs: dict[str, ProbeRun], fault: str) -> None:
    f = FAULTS[fault]
    r = runs[fault]
    hardening = [c for c in f.clauses if CLAUSES[c].hardening]
    contract = [c for c in f.clauses if not CLAUSES[c].hardening]
    for c in contract:
        assert c in r.failed, f"fault {fault} should fail {c}; failed: {sorted(r.failed)}\n{r.output[-5000:]}"
    for c in hardening:
        assert r.critical(c), (
            f"fault {fault} should give a critical {c} finding; got "
            f"{r.rows.get(c, {}).get('findings')}\n{r.output[-3000:]}"
        )
    unrelated = r.failed - set(f.clauses)
    assert not unrelated, f"fault {fault} also fails unrelated {sorted(unrelated)}\n{r.output[-5000:]}"
    assert r.code == (runner.EXIT_FAILED if contract else runner.EXIT_OK)


def test_critical_finding_fails_the_run_when_the_target_asks(runs: dict[str, ProbeRun]) -> None:
    if "crash-on-torture+fail-on" not in runs:
        pytest.skip("no crash-on-torture fault")
    r = runs["crash-on-torture+fail-on"]
    assert r.critical("SIP-SEC-1"), r.rows.get("SIP-SEC-1")
    assert "SIP-SEC-1" in r.failed and r.code == runner.EXIT_FAILED, r.output[-3000:]


def test_no_password_in_any_report_or_terminal(runs: dict[str, ProbeRun]) -> None:
    """Failed SIP checks put ladders, raw messages and pcaps in the reports: never a password."""
    leaks = {name: r.leaked for name, r in runs.items() if r.leaked}
    assert not leaks, leaks


@pytest.mark.parametrize("lockout", [None, "5/30/4"], ids=["no-rate-limit", "lockout"])
def test_password_guessing_measures_throttling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lockout: str | None
) -> None:
    """SIP-SEC-1 throttling is measured, not read off a status code. The reference central refuses every
    wrong password at once with no rate limit: the no-throttling finding. With its lockout on
    (``PBXCHECK_SIP_LOCKOUT``: 5 wrong passwords from one IP lock that IP out for 4 s, the right password
    too, answered 403) the probe measures the lockout, and the finding is gone."""
    from pbxcheck.central.lockout import LOCKOUT_ENV

    if lockout is None:
        monkeypatch.delenv(LOCKOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(LOCKOUT_ENV, lockout)  # the embedded central's process inherits it
    out = io.StringIO()
    code = runner.run(
        None, str(tmp_path), paths=["test_sip_security.py"], extra_args=["-k", "password_guessing"], out=out
    )
    row = json.loads((tmp_path / "clauses.json").read_text(encoding="utf-8"))["clauses"]["SIP-SEC-1"]
    svcrack = next(o["value"] for o in row["observations"] if o["what"] == "svcrack")
    no_throttling = [f for f in row["findings"] if "met no throttling" in f["text"]]
    assert code == runner.EXIT_OK, out.getvalue()[-3000:]
    if lockout is None:
        assert no_throttling and svcrack["throttling"] == "none measured", row
    else:
        assert not no_throttling, row
        assert svcrack["throttling"].startswith("lockout"), svcrack
        assert svcrack["right_password_after"].startswith("SIP/2.0 403"), svcrack
