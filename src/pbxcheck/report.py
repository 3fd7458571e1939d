"""Reports: the clause table (clauses.json, clauses.md), one file per failed check, the terminal summary.

Everything written here goes through a :class:`~pbxcheck.redact.Redactor`, and :func:`redact_tree`
rewrites whatever other tools (junitxml, allure) put under the reports folder, so the target's
secrets never reach a file.
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
from .redact import REDACTED, Redactor

# The verdict of one clause, worst first: one failed check fails the clause.
PASSED = "passed"
FAILED = "failed"
UNSPECIFIED_OBSERVED = "unspecified-observed"
FINDING = "finding"
NOT_RUN = "not-run"
STATES = (FAILED, FINDING, UNSPECIFIED_OBSERVED, PASSED, NOT_RUN)

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


def clause_table(*, results: Iterable[dict[str, Any]], observations: Iterable[dict[str, Any]],
                 findings: Iterable[dict[str, Any]], target_name: str | None = None,
                 insecure: bool = False) -> dict[str, Any]:
    """Fold check results, observations and findings into one verdict per clause.

    ``results`` items carry nodeid, clauses, outcome (passed/failed/error/skipped/not-run),
    failed_clauses, message, failure_file.
    """
    table: dict[str, dict[str, Any]] = {
        cid: {"section": c.section, "summary": c.summary, "kind": _kind(cid), "sip": c.sip, "status": NOT_RUN,
              "checks": [], "observations": [], "findings": [], "failures": []}
        for cid, c in CLAUSES.items()
    }
    for r in results:
        # A check can fail a clause it is not marked with (an insert it relies on answering wrongly
        # fails DIAL-INS-1): the failure is charged where it belongs.
        for cid in dict.fromkeys([*r["clauses"], *r["failed_clauses"]]):
            row = table[cid]
            failed_here = r["outcome"] in ("failed", "error") and cid in r["failed_clauses"]
            # A check that failed on another clause stopped before it finished with this one.
            outcome = "failed" if failed_here else ("inconclusive" if r["outcome"] in ("failed", "error")
                                                     else r["outcome"])
            row["checks"].append({"check": r["nodeid"], "outcome": outcome})
            if failed_here:
                row["failures"].append({"check": r["nodeid"], "message": r.get("message", ""),
                                        "file": r.get("failure_file")})
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
    counts = {s: sum(1 for row in table.values() if row["status"] == s) for s in STATES}
    return {
        "target": target_name,
        "insecure": insecure,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "counts": counts,
        "clauses": table,
    }


def _verdict(row: dict[str, Any]) -> str:
    outcomes = [c["outcome"] for c in row["checks"]]
    if row["failures"]:
        return FAILED
    ran = [o for o in outcomes if o == "passed"]
    if not ran:
        return NOT_RUN
    if row["kind"] == "hardening" and row["findings"]:
        return FINDING
    if row["kind"] == "unspecified" and row["observations"]:
        return UNSPECIFIED_OBSERVED
    return PASSED


def failed_clauses(table: dict[str, Any]) -> list[str]:
    return [cid for cid, row in table["clauses"].items() if row["status"] == FAILED]


# --- Writing -----------------------------------------------------------------------------------------


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("_")[:150]


def write_failure(reports_dir: Path, nodeid: str, clauses: Iterable[str], text: str,
                  exchanges: list[str], redactor: Redactor) -> str:
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
    (reports_dir / CLAUSES_JSON).write_text(json.dumps(clean, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    (reports_dir / CLAUSES_MD).write_text(redactor.text(render_markdown(clean)), encoding="utf-8")


def _cell(text: Any, limit: int = 160) -> str:
    s = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    s = s.replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= limit else s[:limit] + "…"


def render_markdown(table: dict[str, Any]) -> str:
    c = table["counts"]
    lines = [
        f"# Clause report: {table.get('target') or 'target'}",
        "",
        f"Generated {table['generated']}. " + ", ".join(f"{c[s]} {s}" for s in STATES) + ".",
    ]
    if table.get("insecure"):
        lines += ["", "**TLS verification was OFF for this run (target `insecure = true`).**"]
    lines += ["", "| clause | verdict | section | checks | observed / findings / failures |",
              "|---|---|---|---|---|"]
    for cid, row in table["clauses"].items():
        checks = "<br>".join(f"`{_cell(ch['check'], 90)}` {ch['outcome']}" for ch in row["checks"]) or "—"
        notes = [f"{o['what']} = `{_cell(o['value'], 120)}`" for o in row["observations"]]
        notes += [f"{f['severity']}: {_cell(f['text'])}" for f in row["findings"]]
        notes += [f"FAILED: {_cell(f['message'])}" + (f" ({f['file']})" if f.get("file") else "")
                  for f in row["failures"]]
        lines.append(f"| {cid} | {row['status']} | {_cell(row['section'], 60)} | {checks} | "
                     f"{'<br>'.join(dict.fromkeys(notes)) or '—'} |")
    return "\n".join(lines) + "\n"


def render_summary(table: dict[str, Any], *, width: int = 100) -> str:
    """The rich terminal summary, as text (the caller writes it, redacted, wherever it goes)."""
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=max(width, 80), force_terminal=False, color_system=None,
                      highlight=False)
    counts = table["counts"]
    grid = Table(title="pbxcheck: clauses", show_lines=False, expand=False)
    grid.add_column("clause")
    grid.add_column("verdict")
    grid.add_column("detail", overflow="fold")
    for cid, row in table["clauses"].items():
        if row["status"] == NOT_RUN and row.get("sip"):
            continue  # SIP clauses not run are normal for an HTTP-only run; the count says so
        detail = ""
        if row["failures"]:
            detail = row["failures"][0]["message"]
        elif row["findings"]:
            detail = "; ".join(f"{f['severity']}: {f['text']}" for f in row["findings"][:2])
        elif row["observations"]:
            detail = "; ".join(f"{o['what']}={_cell(o['value'], 60)}" for o in row["observations"][:3])
        grid.add_row(cid, row["status"], _cell(detail, 200))
    console.print(grid)
    console.print(
        f"clauses: {counts[PASSED]} passed, {counts[FAILED]} failed, "
        f"{counts[UNSPECIFIED_OBSERVED]} unspecified (observed answer recorded), "
        f"{counts[FINDING]} with findings, {counts[NOT_RUN]} not run")
    console.print("TLS verification: " + ("OFF (target insecure = true)" if table.get("insecure") else "on"))
    return buf.getvalue()


# --- Redaction of what other tools wrote -----------------------------------------------------------------


def secret_variants(secret: str) -> list[bytes]:
    """The spellings a secret takes in files other tools write: raw, JSON-, XML- and URL-escaped."""
    from html import escape as xml_escape
    from urllib.parse import quote, quote_plus

    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
             xml_escape(secret), xml_escape(secret, quote=False), quote(secret, safe=""), quote_plus(secret)}
    return sorted({f.encode() for f in forms if f}, key=len, reverse=True)


def _redact_bytes(data: bytes, redactor: Redactor) -> bytes:
    for secret in redactor.secrets:
        for form in secret_variants(secret):
            data = data.replace(form, REDACTED.encode())
    return data


def redact_tree(root: Path, redactor: Redactor) -> list[Path]:
    """Rewrite every file under ``root`` (and rename any whose name holds a secret); returns the files changed."""
    changed: list[Path] = []
    if not redactor.secrets or not root.is_dir():
        return changed
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            clean = _redact_bytes(data, redactor)
            if clean != data:
                path.write_bytes(clean)
                changed.append(path)
            new_name = redactor.text(name).replace(REDACTED, "redacted")
            if new_name != name:
                path.rename(path.with_name(new_name))
                changed.append(path)
    return changed


def find_secrets(root: Path, secrets: Iterable[str]) -> list[str]:
    """Every (file, secret-length) place under ``root`` where a secret still appears; for tests and runs."""
    hits: list[str] = []
    needles = [s for s in secrets if s]
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            data = path.read_bytes()
            for s in needles:
                if any(form in data for form in secret_variants(s)) or s in name:
                    hits.append(f"{path}: a secret of {len(s)} characters")
    return hits
