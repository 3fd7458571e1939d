"""The audit's verdict on paper: reports/audit/client-clauses.json (the shape of clauses.json),
reports/audit/requests.jsonl (every request recorded), one evidence file per failed clause under
reports/failures/ (the requests that show it, the command's output), and
reports/client-certificate.html rendered by certificate.py. Everything redacted."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__, certificate, report
from ..contract import CLIENT_CLAUSES
from ..redact import Redactor, scan_for_leaks
from .judge_behaviour import judge_err_1, judge_rep_1
from .judge_requests import judge_req_1, judge_req_2, judge_req_3
from .judge_transport import judge_tls_1, judge_tls_2
from .recorder import Exchange
from .verdicts import ClauseVerdict, Evidence

AUDIT_DIR = "audit"
CLIENT_CLAUSES_JSON = "client-clauses.json"
CLIENT_CERTIFICATE = "client-certificate.html"
REQUESTS_JSONL = "requests.jsonl"  # every request recorded, redacted
EVIDENCE_PREFIX = "audit-"
TITLE = "pbxcheck client-integration certificate"
EXCHANGES_SHOWN = 5
BODY_SHOWN = 600


def judge(ev: Evidence, secrets: Sequence[str]) -> list[ClauseVerdict]:
    """Every client-side clause, in CLAUSES.md's order."""
    verdicts = [
        judge_tls_1(ev, secrets),
        judge_tls_2(ev, secrets),
        judge_req_1(ev, secrets),
        judge_req_2(ev),
        judge_req_3(ev),
        judge_rep_1(ev),
        judge_err_1(ev),
    ]
    assert [v.clause.value for v in verdicts] == list(CLIENT_CLAUSES)
    return verdicts


def command_line(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def _exchange_lines(ex: Exchange) -> list[str]:
    body = ex.body.decode("utf-8", "replace")
    body = body if len(body) <= BODY_SHOWN else body[:BODY_SHOWN] + "…"
    answer = ex.answer.decode("utf-8", "replace")
    answer = answer if len(answer) <= 200 else answer[:200] + "…"
    got = f"{ex.status} {answer}" if ex.status else "(no answer: the client left first)"
    chaos = f" [chaos: {ex.chaos}]" if ex.chaos else ""
    return [f"sent:    [{ex.phase}, {ex.port}] {ex.line()} {body}", f"got:     {got}{chaos}"]


def _evidence_text(v: ClauseVerdict, ev: Evidence, command: str) -> str:
    c = CLIENT_CLAUSES[v.clause.value]
    lines = [f"clause:  {v.clause.value} ({c.summary})", f"command: {command}", ""]
    lines += [f"- [{f.check}] {f.message}" for f in v.failures]
    shown = list({id(ex): ex for f in v.failures for ex in f.exchanges}.values())[:EXCHANGES_SHOWN]
    if shown:
        lines.append("")
        for ex in shown:
            lines += _exchange_lines(ex)
        lines.append(f"repro:   pbxcheck audit -- {command}")
    for phase in dict.fromkeys(f.check.split("/")[0] for f in v.failures):
        run = ev.runs.get(phase)
        if run is None:
            continue
        ended = "stopped (time bound)" if run.timed_out else f"exit code {run.exit_code}"
        lines += ["", f"--- the command's output in phase {phase} ({ended}), last {len(run.output)} lines ---"]
        lines += run.output[-40:]
    return "\n".join(lines) + "\n"


def _row(v: ClauseVerdict, evidence_file: str | None) -> dict[str, Any]:
    c = CLIENT_CLAUSES[v.clause.value]
    failed = {f.check for f in v.failures}
    observations = [("deviation", d) for d in v.deviations] + v.observations
    first: dict[str, int] = {}
    for i, f in enumerate(v.failures):
        first.setdefault(f.message, i)
    return {
        "section": c.section,
        "summary": c.summary,
        "kind": c.kind.value,
        "sip": False,
        "status": v.status,
        "checks": [{"check": ch, "outcome": "failed" if ch in failed else "passed"} for ch in v.checked],
        "observations": [{"what": w, "value": val, "check": "audit", "checks": ["audit"]} for w, val in observations],
        "findings": [],
        # the evidence file linked once per distinct failure (the certificate lists each link)
        "failures": [
            {"check": f.check, "message": f.message, "file": evidence_file if i == first[f.message] else None}
            for i, f in enumerate(v.failures)
        ],
        "not_applicable": [{"reason": v.not_applicable, "checks": []}] if v.not_applicable else [],
        "blocked_by": [],
        "deviations": list(v.deviations),
    }


def _phases(ev: Evidence) -> list[dict[str, Any]]:
    return [
        {
            "phase": phase,
            "exit_code": run.exit_code,
            "timed_out": run.timed_out,
            "seconds": round(run.seconds, 2),
            "requests": len(ev.of(phase)) if phase != "impostor" else len(ev.impostor),
            "output_tail": run.output[-40:],
        }
        for phase, run in ev.runs.items()
    ]


def request_record(ex: Exchange) -> dict[str, Any]:
    """One line of requests.jsonl: the request as it came (the body cut at 4 KB), the answer's start."""
    return {
        "phase": ex.phase,
        "port": ex.port,
        "method": ex.method,
        "path": ex.path,
        "query": ex.query,
        "headers": [[k, v] for k, v in ex.headers],
        "body": ex.body[:4096].decode("utf-8", "replace"),
        "body_bytes": len(ex.body),
        "status": ex.status,
        "chaos": ex.chaos,
        "answer": ex.answer[:200].decode("utf-8", "replace"),
    }


def write_reports(
    reports: Path, verdicts: list[ClauseVerdict], ev: Evidence, *, argv: Sequence[str], api_url: str, redactor: Redactor
) -> tuple[Path, Path]:
    """(client-clauses.json, client-certificate.html), both redacted."""
    command = command_line(argv) if argv else "(--serve: clients run another way)"
    failures = reports / report.FAILURES_DIR
    failures.mkdir(parents=True, exist_ok=True)
    for stale in failures.glob(EVIDENCE_PREFIX + "*.txt"):
        stale.unlink()
    rows: dict[str, Any] = {}
    for v in verdicts:
        file = None
        if v.failures:
            path = failures / f"{EVIDENCE_PREFIX}{v.clause.value}.txt"
            path.write_text(redactor.text(_evidence_text(v, ev, command)), encoding="utf-8")
            file = str(Path(report.FAILURES_DIR) / path.name)
        rows[v.clause.value] = _row(v, file)
    counts = {s: sum(1 for r in rows.values() if r["status"] == s) for s in report.STATES}
    table = {
        "target": f"client: {command}",
        "insecure": False,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "require": [],
        "counts": counts,
        "clauses": rows,
        "audit": {"command": command, "api_url": api_url, "phases": _phases(ev)},
    }
    audit_dir = reports / AUDIT_DIR
    audit_dir.mkdir(parents=True, exist_ok=True)
    with open(audit_dir / REQUESTS_JSONL, "w", encoding="utf-8") as log:
        for ex in sorted([*ev.exchanges, *ev.impostor], key=lambda e: e.at):
            log.write(redactor.text(json.dumps(request_record(ex), ensure_ascii=False)) + "\n")
    table_path = audit_dir / CLIENT_CLAUSES_JSON
    table_path.write_text(json.dumps(redactor.data(table), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    phases = " · ".join(f"{p}: {'stopped' if r.timed_out else f'exit {r.exit_code}'}" for p, r in ev.runs.items())
    info = {
        "target": f"client: {command}",
        "embedded": False,
        "endpoints": [
            {"name": "command", "url": command},
            {"name": "audit central", "url": api_url},
            *([{"name": "phases", "url": phases}] if phases else []),
        ],
        "client_audit": True,
        "profile": "client audit",
        "pbxcheck": __version__,
    }
    html = certificate.render(reports, info, table_file=f"{AUDIT_DIR}/{CLIENT_CLAUSES_JSON}", title=TITLE)
    cert_path = reports / CLIENT_CERTIFICATE
    cert_path.write_text(redactor.text(html), encoding="utf-8")
    return table_path, cert_path


def leaks(reports: Path, named: dict[str, str]) -> list[str]:
    """Any piece of a secret in what the audit wrote (the env file aside: it holds them on purpose)."""
    paths = [reports / AUDIT_DIR / n for n in (CLIENT_CLAUSES_JSON, REQUESTS_JSONL)] + [reports / CLIENT_CERTIFICATE]
    paths += sorted((reports / report.FAILURES_DIR).glob(EVIDENCE_PREFIX + "*.txt"))
    return [str(leak) for leak in scan_for_leaks([p for p in paths if p.exists()], named)]
