"""Reports: the clause table (clauses.json, clauses.md), one file per failed check, the terminal summary.

Everything written here goes through a :class:`~pbxcheck.redact.Redactor`, and :func:`redact_tree`
rewrites whatever other tools (junitxml, allure) put under the reports folder, so the target's
secrets, and any 6+-character fragment of one, never reach a file.

A clause that was not checked says why: *not applicable* (its checks skipped: the target has no WS
URL, no [foreign] source IP, ...; with the reasons), *blocked* (its checks stopped because another
clause failed: "blocked by C2C-1"), or *not run* (no check of it was collected). ``[gate] require``
in the target turns any of the three into a failure of that clause.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .contract import CLAUSES
from .redact import REDACTED, Redactor, scan_for_leaks, secret_forms

# The verdict of one clause, worst first: one failed check fails the clause.
PASSED = "passed"
FAILED = "failed"
UNSPECIFIED_OBSERVED = "unspecified-observed"
FINDING = "finding"
NOT_APPLICABLE = "not-applicable"
BLOCKED = "blocked"
NOT_RUN = "not-run"
STATES = (FAILED, FINDING, UNSPECIFIED_OBSERVED, PASSED, BLOCKED, NOT_APPLICABLE, NOT_RUN)
NOT_CHECKED = (BLOCKED, NOT_APPLICABLE, NOT_RUN)

CLAUSES_JSON = "clauses.json"
CLAUSES_MD = "clauses.md"
FAILURES_DIR = "failures"


def _kind(clause_id: str) -> str:
    c = CLAUSES[clause_id]
    if c.hardening:
        return "hardening"
    if c.unspecified:
        return "unspecified"
    return "sip" if c.sip else "contract"


def clause_table(
    *,
    results: Iterable[dict[str, Any]],
    observations: Iterable[dict[str, Any]],
    findings: Iterable[dict[str, Any]],
    target_name: str | None = None,
    insecure: bool = False,
    require: Iterable[str] = (),
) -> dict[str, Any]:
    """Fold check results, observations and findings into one verdict per clause.

    ``results`` items carry nodeid, clauses, outcome (passed/failed/error/skipped/xfailed/blocked/
    not-run), failed_clauses, message (the failure headline, or the skip reason), failure_file and,
    for a blocked check, blocked_by (the clause IDs that stopped it). ``require`` are the clauses the
    target's ``[gate] require`` insists on: one that was not checked fails, with a line saying why.
    """
    table: dict[str, dict[str, Any]] = {
        cid: {
            "section": c.section,
            "summary": c.summary,
            "kind": _kind(cid),
            "sip": c.sip,
            "status": NOT_RUN,
            "checks": [],
            "observations": [],
            "findings": [],
            "failures": [],
            "not_applicable": [],
            "blocked_by": [],
        }
        for cid, c in CLAUSES.items()
    }
    for r in results:
        # A check can fail a clause it is not marked with (an insert it relies on answering wrongly
        # fails DIAL-INS-1): the failure is charged where it belongs.
        for cid in dict.fromkeys([*r["clauses"], *r["failed_clauses"]]):
            row = table[cid]
            entry = _check_entry(r, cid)
            row["checks"].append(entry)
            if entry["outcome"] == "failed":
                row["failures"].append(
                    {"check": r["nodeid"], "message": r.get("message", ""), "file": r.get("failure_file")}
                )
            elif entry["outcome"] == BLOCKED:
                for by in entry["blocked_by"]:
                    if by not in [b["clause"] for b in row["blocked_by"]]:
                        row["blocked_by"].append({"clause": by, "check": r["nodeid"], "why": entry["reason"]})
            elif entry["outcome"] == NOT_APPLICABLE:
                reason = entry["reason"] or "skipped (no reason given)"
                same = next((x for x in row["not_applicable"] if x["reason"] == reason), None)
                if same is None:
                    row["not_applicable"].append({"reason": reason, "checks": [r["nodeid"]]})
                elif r["nodeid"] not in same["checks"]:
                    same["checks"].append(r["nodeid"])
    for o in observations:
        seen = table[o["clause"]]["observations"]
        same = next((x for x in seen if x["what"] == o["what"] and x["value"] == o["value"]), None)
        if same is None:  # one line per distinct answer; the checks that saw it are listed with it
            seen.append({"what": o["what"], "value": o["value"], "check": o["check"], "checks": [o["check"]]})
        elif o["check"] not in same["checks"]:
            same["checks"].append(o["check"])
    for f in findings:
        table[f["clause"]]["findings"].append({k: f[k] for k in ("severity", "text", "check")})
    for row in table.values():
        row["status"] = _verdict(row)
    for cid in dict.fromkeys(require):
        if cid not in table or table[cid]["status"] not in NOT_CHECKED:
            continue
        row = table[cid]
        row["failures"].append(
            {
                "check": None,
                "file": None,
                "message": f"[gate] require: {cid} must be checked, but it was {_not_checked_why(row)}",
            }
        )
        row["status"] = FAILED
    counts = {s: sum(1 for row in table.values() if row["status"] == s) for s in STATES}
    return {
        "target": target_name,
        "insecure": insecure,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "require": list(dict.fromkeys(require)),
        "counts": counts,
        "clauses": table,
    }


def _check_entry(r: dict[str, Any], cid: str) -> dict[str, Any]:
    """What one check did for one clause: passed, failed, blocked (by the clauses that failed
    first), not-applicable (with the skip reason) or not-run."""
    outcome = r["outcome"]
    entry: dict[str, Any] = {"check": r["nodeid"], "outcome": outcome}
    if outcome in ("failed", "error"):
        if cid in r["failed_clauses"] or not r["failed_clauses"]:
            entry["outcome"] = "failed"
        else:
            # The check failed on another clause and stopped before it finished with this one.
            others = [c for c in r["failed_clauses"] if c != cid]
            entry.update(outcome=BLOCKED, blocked_by=others, reason=r.get("message", ""))
    elif outcome == BLOCKED:
        by = list(r.get("blocked_by") or [])
        reason = r.get("message", "")
        for cid_by in by:  # blocked_by() says "blocked by C2C-1: why"; the table says it once
            reason = reason.removeprefix(f"blocked by {cid_by}: ")
        entry.update(blocked_by=by, reason=reason)
    elif outcome in ("skipped", "xfailed"):
        entry.update(outcome=NOT_APPLICABLE, reason=r.get("message", ""))
    return entry


def _not_checked_why(row: dict[str, Any]) -> str:
    if row["status"] == BLOCKED:
        return "blocked by " + ", ".join(b["clause"] for b in row["blocked_by"])
    if row["status"] == NOT_APPLICABLE:
        return "not applicable: " + "; ".join(n["reason"] for n in row["not_applicable"])
    return "not run (no check of it ran)"


def _verdict(row: dict[str, Any]) -> str:
    outcomes = [c["outcome"] for c in row["checks"]]
    if row["failures"]:
        return FAILED
    if "passed" not in outcomes:
        if BLOCKED in outcomes:
            return BLOCKED
        if NOT_APPLICABLE in outcomes:
            return NOT_APPLICABLE
        return NOT_RUN
    if row["kind"] == "hardening" and row["findings"]:
        return FINDING
    if row["kind"] == "unspecified" and row["observations"]:
        return UNSPECIFIED_OBSERVED
    return PASSED


def not_checked(table: dict[str, Any]) -> list[str]:
    """Clauses that ended without a verdict of their own: blocked, not applicable or not run."""
    return [cid for cid, row in table["clauses"].items() if row["status"] in NOT_CHECKED]


def failed_clauses(table: dict[str, Any]) -> list[str]:
    return [cid for cid, row in table["clauses"].items() if row["status"] == FAILED]


# --- Writing -----------------------------------------------------------------------------------------


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("_")[:150]


def write_failure(
    reports_dir: Path, nodeid: str, clauses: Iterable[str], text: str, exchanges: list[str], redactor: Redactor
) -> str:
    """One failed check: its message, then every exchange it made (request, answer, curl)."""
    folder = reports_dir / FAILURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (_safe_name(nodeid) + ".txt")
    parts = [f"check:   {nodeid}", f"clauses: {' '.join(clauses)}", "", text.rstrip(), ""]
    if exchanges:
        parts.append(f"--- the check's last {len(exchanges)} exchanges, oldest first ---")
        for i, ex in enumerate(exchanges, 1):
            parts += ["", f"#{i}", ex]
    path.write_text(redactor.text("\n".join(parts)) + "\n", encoding="utf-8")
    return str(path)


def write_clause_reports(reports_dir: Path, table: dict[str, Any], redactor: Redactor) -> None:
    reports_dir.mkdir(parents=True, exist_ok=True)
    clean = redactor.data(table)
    (reports_dir / CLAUSES_JSON).write_text(json.dumps(clean, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (reports_dir / CLAUSES_MD).write_text(redactor.text(render_markdown(clean)), encoding="utf-8")


def _cell(text: Any, limit: int = 160) -> str:
    s = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    s = s.replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= limit else s[:limit] + "…"


def _which(checks: list[str]) -> str:
    """The checks that saw one value, by their parameter (``[insert]``) or, unparametrised, by name."""
    names = []
    for nodeid in checks:
        name = nodeid.rsplit("::", 1)[-1]
        names.append(name[name.index("[") :] if "[" in name else name)
    return ", ".join(dict.fromkeys(names))


def observation_lines(row: dict[str, Any], limit: int = 120) -> list[str]:
    """Every observed value of a clause, grouped by what was observed, each with the checks
    (parameters) that saw it: a parametrised observation shows every parameter's value."""
    lines = []
    for o in row["observations"]:
        lines.append(f"{o['what']} = {_cell(o['value'], limit)} ({_which(o.get('checks') or [o['check']])})")
    return lines


def not_checked_lines(row: dict[str, Any]) -> list[str]:
    lines = [
        f"blocked by {b['clause']}" + (f" ({_cell(b['why'], 100)})" if b.get("why") else "")
        for b in row.get("blocked_by", [])
    ]
    lines += [f"not applicable: {_cell(n['reason'], 140)}" for n in row.get("not_applicable", [])]
    return lines


def _counts_line(counts: dict[str, int]) -> str:
    checked = ", ".join(f"{counts[s]} {s}" for s in STATES if s not in NOT_CHECKED)
    missing = sum(counts[s] for s in NOT_CHECKED)
    return (
        f"{checked}; {missing} not checked ({counts[NOT_APPLICABLE]} not applicable, "
        f"{counts[BLOCKED]} blocked, {counts[NOT_RUN]} not run)"
    )


def render_markdown(table: dict[str, Any]) -> str:
    c = table["counts"]
    lines = [
        f"# Clause report: {table.get('target') or 'target'}",
        "",
        f"Generated {table['generated']}. " + _counts_line(c) + ".",
    ]
    if table.get("require"):
        lines += ["", "Required by the target's [gate]: " + ", ".join(table["require"]) + "."]
    if table.get("insecure"):
        lines += ["", "**TLS verification was OFF for this run (target `insecure = true`).**"]
    lines += [
        "",
        "| clause | verdict | section | checks | observed / findings / failures / why not checked |",
        "|---|---|---|---|---|",
    ]
    for cid, row in table["clauses"].items():
        checks = "<br>".join(f"`{_cell(ch['check'], 90)}` {ch['outcome']}" for ch in row["checks"]) or "—"
        notes = [_cell(line, 200) for line in observation_lines(row)]
        notes += [f"{f['severity']}: {_cell(f['text'])}" for f in row["findings"]]
        notes += [
            f"FAILED: {_cell(f['message'])}" + (f" ({f['file']})" if f.get("file") else "") for f in row["failures"]
        ]
        if row["status"] in NOT_CHECKED:
            notes += [_cell(line, 200) for line in not_checked_lines(row)]
        lines.append(
            f"| {cid} | {row['status']} | {_cell(row['section'], 60)} | {checks} | "
            f"{'<br>'.join(dict.fromkeys(notes)) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def render_summary(table: dict[str, Any], *, width: int = 100) -> str:
    """The rich terminal summary, as text (the caller writes it, redacted, wherever it goes)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text  # plain text: "[foreign]", "[insert]", "[redacted]" are not markup

    buf = io.StringIO()
    console = Console(file=buf, width=max(width, 80), force_terminal=False, color_system=None, highlight=False)
    counts = table["counts"]
    grid = Table(title="pbxcheck: clauses", show_lines=False, expand=False)
    grid.add_column("clause")
    grid.add_column("verdict")
    grid.add_column("detail", overflow="fold")
    for cid, row in table["clauses"].items():
        if row["status"] == NOT_RUN and row.get("sip") and cid not in table.get("require", ()):
            continue  # SIP clauses not run are normal for an HTTP-only run; the count says so
        detail = ""
        if row["failures"]:
            detail = row["failures"][0]["message"]
        elif row["status"] in NOT_CHECKED:
            detail = "; ".join(not_checked_lines(row)[:3])
        elif row["findings"]:
            detail = "; ".join(f"{f['severity']}: {f['text']}" for f in row["findings"][:2])
        elif row["observations"]:
            detail = "; ".join(observation_lines(row, 60)[:6])
        grid.add_row(Text(cid), Text(row["status"]), Text(_cell(detail, 300)))
    console.print(grid)
    console.print(
        f"clauses: {counts[PASSED]} passed, {counts[FAILED]} failed, "
        f"{counts[UNSPECIFIED_OBSERVED]} unspecified (observed answer recorded), "
        f"{counts[FINDING]} with findings; {sum(counts[s] for s in NOT_CHECKED)} not checked: "
        f"{counts[NOT_APPLICABLE]} not applicable, {counts[BLOCKED]} blocked, {counts[NOT_RUN]} not run"
    )
    console.print("TLS verification: " + ("OFF (target insecure = true)" if table.get("insecure") else "on"))
    return buf.getvalue()


# --- Redaction of what other tools wrote -----------------------------------------------------------------


def secret_variants(secret: str) -> list[bytes]:
    """The spellings a secret takes in files other tools write: raw, JSON-, XML- and URL-escaped."""
    return sorted({f.encode() for f in secret_forms(secret)}, key=len, reverse=True)


def redact_tree(root: Path, redactor: Redactor) -> list[Path]:
    """Rewrite every file under ``root`` (junit.xml, allure-results' JSON and attachments, failure
    files), cutting out every secret and every 6+-character fragment of one in any spelling, and
    rename any file whose name holds one; returns the files changed."""
    changed: list[Path] = []
    if not redactor.secrets or not root.is_dir():
        return changed
    escaped = redactor.escaped()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            clean = escaped.bytes(data)
            if clean != data:
                path.write_bytes(clean)
                changed.append(path)
            new_name = escaped.text(name).replace(REDACTED, "redacted")
            if new_name != name:
                path.rename(path.with_name(new_name))
                changed.append(path)
    return changed


def find_secrets(root: Path, secrets: Iterable[str]) -> list[str]:
    """Every place under ``root`` where a secret, or a 6+-character fragment of one, still appears
    (as one line each, never showing the fragment); for tests and runs. See redact.scan_for_leaks."""
    return [str(leak) for leak in scan_for_leaks([root], [s for s in secrets if s])]
