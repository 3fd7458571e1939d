"""``reports/certificate.html``: the run's verdict as one self-contained page a person can read.

Rendered from what the run left in the reports folder (``clauses.json``, ``failures/``, the Allure
results' SIP ladders and pcaps) and the target's public fields (``run-info.json``: names and URLs,
never a credential). Inline CSS and SVG, nothing fetched: it opens from disk, prints well, and its
links (failure files, pcaps) are relative, so they keep working when reports/ is copied or zipped.

The verdict: *does not conform* when a clause failed, else *incomplete* when a clause was not
checked (blocked, not applicable, not run) or the run was cut short, else *conforms*. Clauses come in
the order a reader needs them: failed, findings (worst severity first), unspecified with the
observed answer, passed, then those not checked. A failed clause shows one line per distinct failure
(parametrised cases of one check and checks failing with the same message are grouped), the
reproduction (curl lines, the secrets as environment variables) and the SIP ladder when there is one.

``pbxcheck report [DIR] [--pdf]`` renders it again from DIR and prints it to PDF with Debian's
headless Chromium.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from . import __version__, report
from .contract import API_VERSION, CLAUSES, CONTRACT_DOCUMENT, CONTRACT_FILE, CONTRACT_VERSION
from .redact import REDACTED, Redactor

CERTIFICATE_HTML = "certificate.html"
CERTIFICATE_PDF = "certificate.pdf"
RUN_INFO_JSON = "run-info.json"
ALLURE_DIR = "allure-results"

CONFORMS = "conforms"
DOES_NOT_CONFORM = "does not conform"
INCOMPLETE = "incomplete"

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
# Where each verdict goes on the page, and its colour (text, background, border).
ORDER = (
    report.FAILED,
    report.FINDING,
    report.UNSPECIFIED_OBSERVED,
    report.PASSED,
    report.BLOCKED,
    report.NOT_APPLICABLE,
    report.NOT_RUN,
)
GROUP_TITLES = {
    report.FAILED: "Failed",
    report.FINDING: "Findings (beyond the document)",
    report.UNSPECIFIED_OBSERVED: "Unspecified by the document: the observed answer",
    report.PASSED: "Passed",
    report.BLOCKED: "Not checked: blocked by a failed clause",
    report.NOT_APPLICABLE: "Not applicable to this target",
    report.NOT_RUN: "Not run",
}
# Secrets in a reproduction become these environment variables (export them from the target file).
SECRET_ENV = {"senha": "PBX_SENHA", "token": "PBX_TOKEN"}
MAX_CASES = 12  # a failure line lists this many distinct cases, then counts the rest
MAX_LINKS = 10
MAX_OBSERVATIONS = 16
BANNER_IDS = 8  # the banner names the clauses when there are this few; the page lists them all


# --- Run info: the target's public fields ----------------------------------------------------------


def run_info(target: Any, *, profile: str = "ci", faults: Sequence[str] = (), embedded: bool = False) -> dict[str, Any]:
    """What the header says about the run: the target's name and endpoints (no credential, no
    extension password), TLS verification, the profile, the faults of an embedded central."""
    endpoints = [
        ("API", target.api_endpoint),
        ("plain HTTP", target.plain_url),
        ("SIP UDP", f"{target.sip_host}:{target.sip_udp_port}"),
        ("SIP TCP", f"{target.sip_host}:{target.sip_tcp_port}"),
    ]
    if target.sip_ws_url:
        endpoints.append(("SIP WS", target.sip_ws_url))
    if target.sip_wss_url:
        endpoints.append(("SIP WSS", target.sip_wss_url))
    return {
        "target": target.name,
        "embedded": embedded,
        "endpoints": [{"name": n, "url": u} for n, u in endpoints],
        "source_ip": target.source_ip,
        "login": target.login,
        "tls_verify_api": not target.insecure,
        "tls_verify_sip": not target.sip_insecure,
        "profile": profile,
        "faults": list(faults),
        "pbxcheck": __version__,
    }


# --- Reading the reports folder ----------------------------------------------------------------------


@dataclass
class FailureFile:
    name: str  # the file's name under failures/
    repro: list[str] = field(default_factory=list)  # sent/got/repro lines of the failing exchange
    ladder: str = ""  # a SIP ladder, when the failure text carries one


def _e_block(text: str) -> list[str]:
    """pytest's ``E`` lines (the exception's text), without the ``E`` column."""
    return [re.sub(r"^E {0,7}", "", line) for line in text.splitlines() if line.startswith("E")]


def read_failure_file(path: Path) -> FailureFile:
    """The reproduction in one failure file: the exchange the failure names (sent/got/repro, from
    the exception text), else the check's last exchange; and a SIP ladder if there is one."""
    ff = FailureFile(path.name)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ff
    lines = _e_block(text) or text.splitlines()
    ff.repro = _exchange(lines)
    if not ff.repro and "--- the check's last" in text:
        last = text.rsplit("\n#", 1)[-1].splitlines()[1:]
        ff.repro = _exchange(last)
    start = next((i for i, line in enumerate(lines) if line.startswith("SIP exchange of")), None)
    if start is None:
        all_lines = text.splitlines()
        start_all = next((i for i, line in enumerate(all_lines) if line.lstrip().startswith("SIP exchange of")), None)
        if start_all is not None:
            lines, start = all_lines, start_all
    if start is not None:
        ladder = []
        for line in lines[start:]:
            if not line.strip():
                break
            ladder.append(line)
        ff.ladder = "\n".join(ladder[:80])
    return ff


def _exchange(lines: list[str]) -> list[str]:
    """The first sent:/got:/repro: group in ``lines`` (with continuation lines)."""
    out: list[str] = []
    for line in lines:
        if line.startswith(("sent:", "got:", "repro:")):
            out.append(line)
        elif out and line.startswith("         ") and not out[-1].startswith("repro:"):
            out.append(line)
        elif out and out[-1].startswith("repro:"):
            break
        elif out and not line.strip():
            continue
    return out


def working_curl(line: str) -> str:
    """A repro line whose secrets read from the environment: ``"senha": "[redacted]"`` in the
    single-quoted body becomes ``"senha": "'"$PBX_SENHA"'"`` (paste it after exporting them)."""
    for name, env in SECRET_ENV.items():
        line = line.replace(f'"{name}": "{REDACTED}"', f'"{name}": "\'"${env}"\'"')
    return line


def allure_evidence(reports_dir: Path) -> dict[str, list[dict[str, str]]]:
    """nodeid -> the SIP ladders and pcaps Allure kept for it (relative paths under reports/): those
    attached to the result itself, and those its fixtures attached at teardown (containers)."""
    out: dict[str, list[dict[str, str]]] = {}
    folder = reports_dir / ALLURE_DIR
    if not folder.is_dir():
        return out

    def wanted(atts: Any) -> list[dict[str, str]]:
        return [
            {"name": str(a.get("name", "attachment")), "href": f"{ALLURE_DIR}/{a['source']}"}
            for a in atts or []
            if isinstance(a, dict)
            and isinstance(a.get("source"), str)
            and (a["source"].endswith(".pcap") or "ladder" in str(a.get("name", "")).lower())
            and (folder / a["source"]).exists()
        ]

    nodeids: dict[str, str] = {}
    for f in folder.glob("*-result.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
            r = json.loads(f.read_text(encoding="utf-8"))
            module, _, _ = str(r.get("fullName", "")).partition("#")
            nodeid = module.replace(".", "/") + ".py::" + str(r.get("name", ""))
            nodeids[str(r.get("uuid"))] = nodeid
            if found := wanted(r.get("attachments")):  # a check of several clauses has one result per clause
                out.setdefault(nodeid, []).extend(a for a in found if a not in out[nodeid])
    for f in folder.glob("*-container.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
            c = json.loads(f.read_text(encoding="utf-8"))
            found = [
                a
                for step in [*(c.get("befores") or []), *(c.get("afters") or [])]
                for a in wanted(step.get("attachments"))
            ]
            for child in c.get("children") or []:
                if found and child in nodeids:
                    out.setdefault(nodeids[child], []).extend(found)
    return out


def sha256_of(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "(no clauses.json)"


# --- Verdict and order ---------------------------------------------------------------------------------


def verdict(table: dict[str, Any]) -> tuple[str, str]:
    """(verdict, the banner's sentence)."""
    clauses = table.get("clauses") or {}
    failed = [cid for cid, row in clauses.items() if row.get("status") == report.FAILED]
    unchecked = [cid for cid, row in clauses.items() if row.get("status") in report.NOT_CHECKED]
    if failed:
        listed = f" ({', '.join(failed)})" if len(failed) <= BANNER_IDS else ""
        return (
            DOES_NOT_CONFORM,
            f"Does not conform: {len(failed)} clause{'s' if len(failed) != 1 else ''} failed{listed}",
        )
    if table.get("incomplete") or unchecked or not clauses:
        why = f" ({table['incomplete_reason']})" if table.get("incomplete") and table.get("incomplete_reason") else ""
        n = len(unchecked)
        return INCOMPLETE, (
            f"Incomplete: {n} clause{'s' if n != 1 else ''} not checked"
            + (f" ({', '.join(unchecked)})" if 0 < n <= BANNER_IDS else "")
            + why
        )
    return CONFORMS, f"Conforms: all {len(clauses)} clauses checked, none failed"


def _worst_severity(row: dict[str, Any]) -> int:
    sev = [
        SEVERITY_ORDER.index(f["severity"]) for f in row.get("findings") or [] if f.get("severity") in SEVERITY_ORDER
    ]
    return min(sev) if sev else len(SEVERITY_ORDER)


def ordered(table: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Clauses in reading order: failed, findings by severity, unspecified, passed, not checked."""
    ids = list((table.get("clauses") or {}).keys())
    items = list((table.get("clauses") or {}).items())

    def key(item: tuple[str, dict[str, Any]]) -> tuple[int, int, int]:
        cid, row = item
        status = row.get("status", report.NOT_RUN)
        rank = ORDER.index(status) if status in ORDER else len(ORDER)
        return rank, _worst_severity(row) if status == report.FINDING else 0, ids.index(cid)

    return sorted(items, key=key)


# --- Grouping failures -----------------------------------------------------------------------------------


def _split(nodeid: str | None) -> tuple[str, str]:
    """(the check without parameters, its parameter part ``[...]`` or '')."""
    if not nodeid:
        return "", ""
    m = re.match(r"^(.*?)(\[.*\])?$", nodeid)
    assert m
    return m.group(1), m.group(2) or ""


def _headline(message: str) -> str:
    message = (message or "").strip()
    return re.sub(r"^\[[A-Z0-9-]+\]\s*", "", message.splitlines()[0] if message else "")


def _norm(message: str) -> str:
    return re.sub(r"\d{6,}", "#", message)


@dataclass
class FailureGroup:
    headline: str
    failures: list[dict[str, Any]]
    variants: list[tuple[str, list[str]]]  # distinct tails of the message, with the cases that gave them

    @property
    def checks(self) -> list[tuple[str, list[str]]]:
        """Each failing check once, with its failing parameters."""
        out: dict[str, list[str]] = {}
        for f in self.failures:
            base, param = _split(f.get("check"))
            out.setdefault(base or "[gate]", [])
            if param:
                out[base or "[gate]"].append(param)
        return list(out.items())


def group_failures(failures: Iterable[dict[str, Any]]) -> list[FailureGroup]:
    """One group per distinct failure: the parametrised cases of one check are one group, and so are
    checks that fail with the same message (numbers of 6+ digits, IDs and timestamps, ignored)."""
    items = list(failures)
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_of: dict[tuple[str, str], int] = {}
    for i, f in enumerate(items):
        base, _ = _split(f.get("check"))
        for key in (("msg", _norm(_headline(f.get("message", "")))), ("check", base) if base else ("i", str(i))):
            if key in first_of:
                parent[find(i)] = find(first_of[key])
            else:
                first_of[key] = i
    groups: dict[int, list[dict[str, Any]]] = {}
    for i, f in enumerate(items):
        groups.setdefault(find(i), []).append(f)
    out = []
    for members in groups.values():
        heads = [_headline(m.get("message", "")) for m in members]
        distinct = list(dict.fromkeys(_norm(h) for h in heads))
        if len(distinct) == 1:
            out.append(FailureGroup(heads[0], members, []))
            continue
        prefix = os.path.commonprefix(heads)
        cut = max(prefix.rfind(" "), prefix.rfind(","))
        prefix = prefix[: cut + 1] if cut > 0 and len(prefix) < len(heads[0]) else prefix
        variants: dict[str, list[str]] = {}
        for m, h in zip(members, heads, strict=True):
            base, param = _split(m.get("check"))
            variants.setdefault(h[len(prefix) :].strip(), []).append(param or base.rsplit("::", 1)[-1])
        out.append(FailureGroup(prefix.rstrip(" ,") + " …", members, list(variants.items())))
    return out


# --- Rendering -------------------------------------------------------------------------------------------

CSS = """
:root { --fail:#b3261e; --fail-bg:#fdecea; --pass:#1e7b34; --pass-bg:#e8f5ec; --find:#a15c00; --find-bg:#fff4e0;
  --unsp:#1d5fa8; --unsp-bg:#e8f0fb; --nc:#5f6368; --nc-bg:#f1f3f4; --line:#d8dbe0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; color:#202124;
  margin: 0 auto; max-width: 1180px; padding: 20px 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 22px 0 8px; border-bottom: 2px solid var(--line); padding-bottom: 3px; }
.sub { color:#5f6368; margin: 0 0 12px; }
table.meta { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 12px; width: 100%; }
table.meta th { text-align: left; color:#5f6368; font-weight: 600; padding: 2px 10px 2px 0; white-space: nowrap; vertical-align: top; width: 1%; }
table.meta td { padding: 2px 18px 2px 0; word-break: break-all; }
code, pre { font: 12px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.banner { display: flex; align-items: center; gap: 14px; padding: 12px 16px; border-radius: 8px; border: 2px solid;
  font-size: 19px; font-weight: 700; margin: 10px 0 8px; }
.banner svg { flex: none; }
.banner.v-fail { color: var(--fail); background: var(--fail-bg); }
.banner.v-pass { color: var(--pass); background: var(--pass-bg); }
.banner.v-inc { color: var(--find); background: var(--find-bg); }
.counts { font-size: 12.5px; color:#3c4043; margin: 4px 0 6px; }
.chips { display: flex; flex-wrap: wrap; gap: 4px; margin: 6px 0 4px; }
.chip { font: 600 11px/1 "DejaVu Sans Mono", monospace; padding: 4px 6px; border-radius: 4px; text-decoration: none; border: 1px solid; }
.s-failed { --c: var(--fail); --bg: var(--fail-bg); } .s-finding { --c: var(--find); --bg: var(--find-bg); }
.s-unspecified-observed { --c: var(--unsp); --bg: var(--unsp-bg); } .s-passed { --c: var(--pass); --bg: var(--pass-bg); }
.s-blocked, .s-not-applicable, .s-not-run { --c: var(--nc); --bg: var(--nc-bg); }
.chip { color: var(--c); background: var(--bg); border-color: var(--c); }
section.clause { border: 1px solid var(--line); border-left: 5px solid var(--c); border-radius: 6px; padding: 8px 12px;
  margin: 8px 0; break-inside: avoid-page; }
section.clause.compact { padding: 3px 12px; margin: 3px 0; border-left-width: 4px; }
section.clause.compact .summary { font-weight: 400; }
.why { color:#3c4043; font-size: 12px; font-style: italic; }
section.clause.s-failed { background: linear-gradient(90deg, var(--fail-bg), #fff 40%); }
.ch { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 10px; }
.cid { font: 700 14px "DejaVu Sans Mono", monospace; }
.pill { font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .03em; color: #fff; background: var(--c);
  padding: 2px 7px; border-radius: 10px; }
.summary { font-weight: 600; } .section { color:#5f6368; font-size: 12px; }
ul { margin: 4px 0 2px; padding-left: 20px; } li { margin: 2px 0; }
.fail-line { color: var(--fail); font-weight: 600; }
.cases { color:#3c4043; font-size: 12px; font-weight: 400; }
.cases code { background:#f6f7f8; padding: 0 3px; border-radius: 3px; }
.sev { font-size: 10.5px; font-weight: 700; text-transform: uppercase; padding: 1px 5px; border-radius: 3px; color:#fff; }
.sev-critical, .sev-high { background: var(--fail); } .sev-medium { background: #d46b08; } .sev-low { background: #b08800; } .sev-info { background: var(--nc); }
pre { color:#202124; font-weight: 400; background:#f6f7f8; border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px; margin: 4px 0;
  white-space: pre-wrap; word-break: break-all; }
pre.ladder { white-space: pre; overflow-x: auto; word-break: normal; font-size: 10.5px; }
.muted { color:#5f6368; font-size: 12px; }
.label { color:#5f6368; font-size: 11.5px; font-weight: 700; text-transform: uppercase; letter-spacing: .04em; margin-top: 6px; }
a { color: #1a57b0; }
.note { font-size: 12px; color:#5f6368; margin: 4px 0 10px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11.5px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; }
  pre.ladder { white-space: pre-wrap; }
  @page { margin: 14mm 12mm; }
}
"""

_ICONS = {
    CONFORMS: '<path d="M8 16.5l5.5 5.5L24 11" fill="none" stroke="currentColor" stroke-width="3.5" stroke-linecap="round" stroke-linejoin="round"/>',
    DOES_NOT_CONFORM: '<path d="M10 10l12 12M22 10L10 22" fill="none" stroke="currentColor" stroke-width="3.5" stroke-linecap="round"/>',
    INCOMPLETE: '<path d="M16 8v10M16 23v1" fill="none" stroke="currentColor" stroke-width="3.5" stroke-linecap="round"/>',
}
_BANNER_CLASS = {CONFORMS: "v-pass", DOES_NOT_CONFORM: "v-fail", INCOMPLETE: "v-inc"}
_BAR_COLOURS = {
    report.FAILED: "#b3261e",
    report.FINDING: "#d48806",
    report.UNSPECIFIED_OBSERVED: "#1d5fa8",
    report.PASSED: "#1e7b34",
    report.BLOCKED: "#9aa0a6",
    report.NOT_APPLICABLE: "#bdc1c6",
    report.NOT_RUN: "#dadce0",
}


def _e(value: Any) -> str:
    return escape(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), quote=True)


def _short(value: Any, limit: int = 220) -> str:
    s = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[:limit] + "…"


def _bar(counts: dict[str, int]) -> str:
    total = sum(counts.get(s, 0) for s in ORDER) or 1
    x, parts = 0.0, []
    for s in ORDER:
        n = counts.get(s, 0)
        if not n:
            continue
        w = 600 * n / total
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="12" fill="{_BAR_COLOURS[s]}"><title>{n} {_e(s)}</title></rect>'
        )
        x += w
    return f'<svg width="600" height="12" viewBox="0 0 600 12" role="img" aria-label="clause verdicts">{"".join(parts)}</svg>'


def _check_name(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


def _checks_line(row: dict[str, Any]) -> str:
    by: dict[str, dict[str, int]] = {}
    for ch in row.get("checks") or []:
        base, _ = _split(ch.get("check"))
        by.setdefault(_check_name(base), {}).setdefault(ch.get("outcome", "?"), 0)
        by[_check_name(base)][ch.get("outcome", "?")] += 1
    if not by:
        return ""
    parts = []
    for name, outcomes in by.items():
        n = sum(outcomes.values())
        tail = f" ×{n}" if n > 1 else ""
        bad = {k: v for k, v in outcomes.items() if k != "passed"}
        if bad:
            tail += " (" + ", ".join(f"{v} {k}" for k, v in bad.items()) + ")"
        parts.append(f"<code>{_e(name)}</code>{_e(tail)}")
    return f'<div class="muted">checks: {" · ".join(parts)}</div>'


def _failure_html(group: FailureGroup, files: dict[str, FailureFile], clause_id: str) -> str:
    checks = "; ".join(
        f"<code>{_e(_check_name(base))}</code>"
        + (f" {len(params)} cases" if len(params) > 1 else (f" <code>{_e(params[0])}</code>" if params else ""))
        for base, params in group.checks
    )
    out = [f'<li class="fail-line" data-clause="{_e(clause_id)}">{_e(group.headline)}<div class="cases">{checks}</div>']
    if group.variants:
        shown = group.variants[:MAX_CASES]
        items = "".join(
            f"<li>{_e(_short(tail, 160))} <code>{_e(', '.join(dict.fromkeys(cases)))}</code></li>"
            for tail, cases in shown
        )
        more = f"<li>… and {len(group.variants) - MAX_CASES} more</li>" if len(group.variants) > MAX_CASES else ""
        out.append(f'<ul class="cases">{items}{more}</ul>')
    names = [Path(f["file"]).name for f in group.failures if f.get("file")]
    labels = {
        Path(f["file"]).name: (_split(f.get("check"))[1] or _check_name(f.get("check") or ""))
        for f in group.failures
        if f.get("file")
    }
    first = next((files[n] for n in names if n in files and (files[n].repro or files[n].ladder)), None)
    if first is not None and first.repro:
        exchange = [line for line in first.repro if not line.startswith("repro:")]
        curls = [working_curl(line.removeprefix("repro:").strip()) for line in first.repro if line.startswith("repro:")]
        if exchange:
            out.append('<div class="label">exchange</div><pre class="exchange">' + _e("\n".join(exchange)) + "</pre>")
        if curls:
            out.append('<div class="label">reproduction</div><pre class="repro">' + _e("\n".join(curls)) + "</pre>")
    if first is not None and first.ladder:
        out.append('<div class="label">SIP ladder</div><pre class="ladder">' + _e(first.ladder) + "</pre>")
    if names:
        links = " · ".join(
            f'<a href="{_e(report.FAILURES_DIR + "/" + n)}" title="{_e(n)}">{_e(labels.get(n) or n)}</a>'
            for n in names[:MAX_LINKS]
        )
        if len(names) > MAX_LINKS:
            links += f" · … {len(names) - MAX_LINKS} more in {report.FAILURES_DIR}/"
        out.append(f'<div class="muted">failure file{"s" if len(names) > 1 else ""}: {links}</div>')
    return "".join(out) + "</li>"


def _which(what: str, checks: list[str]) -> str:
    """The checks that saw a value: by parameter, or (a grouped line, whose names are the
    parameters already) by check name."""
    if "{" in what:
        return ", ".join(dict.fromkeys(_check_name(_split(c)[0]) for c in checks))
    return report._which(checks)


def _observation_groups(observations: list[dict[str, Any]]) -> list[tuple[str, Any, list[str]]]:
    """One line per observed value: ``token/insert`` … ``token/clicktocall`` that all saw the same
    answer become ``token/{insert, …, clicktocall}``."""
    groups: dict[tuple[str, str], tuple[list[str], Any, list[str]]] = {}
    for o in observations:
        what = str(o.get("what", ""))
        prefix, slash, rest = what.partition("/")
        key = (prefix if slash else what, json.dumps(o.get("value"), sort_keys=True, ensure_ascii=False))
        names, _, checks = groups.setdefault(key, ([], o.get("value"), []))
        names.append(rest if slash else "")
        checks.extend(o.get("checks") or [o.get("check", "")])
    out = []
    for (prefix, _), (names, value, checks) in groups.items():
        named = [n for n in names if n]
        what = (
            prefix if not named else (f"{prefix}/{named[0]}" if len(named) == 1 else f"{prefix}/{{{', '.join(named)}}}")
        )
        out.append((what, value, list(dict.fromkeys(checks))))
    return out


def _clause_html(
    cid: str, row: dict[str, Any], files: dict[str, FailureFile], evidence: dict[str, list[dict[str, str]]]
) -> str:
    status = row.get("status", report.NOT_RUN)
    c = CLAUSES.get(cid)
    text = (getattr(c, "text", "") or row.get("summary") or (c.summary if c else "")) if c else row.get("summary", "")
    section = row.get("section") or (c.section if c else "")
    parts = [
        f'<section class="clause s-{_e(status)}" id="clause-{_e(cid)}" data-clause="{_e(cid)}" data-status="{_e(status)}">',
        f'<div class="ch"><span class="cid">{_e(cid)}</span><span class="pill">{_e(status.replace("-", " "))}</span>'
        f'<span class="summary">{_e(text)}</span><span class="section">§ {_e(section)}</span></div>',
    ]
    if row.get("failures"):
        groups = group_failures(row["failures"])
        parts.append(
            f'<div class="label">{len(groups)} distinct failure{"s" if len(groups) != 1 else ""}'
            f" ({len(row['failures'])} failed case{'s' if len(row['failures']) != 1 else ''})</div>"
        )
        parts.append('<ul class="failures">' + "".join(_failure_html(g, files, cid) for g in groups) + "</ul>")
    findings = sorted(
        row.get("findings") or [],
        key=lambda f: SEVERITY_ORDER.index(f["severity"]) if f.get("severity") in SEVERITY_ORDER else 9,
    )
    if findings:
        parts.append(
            '<div class="label">findings</div><ul>'
            + "".join(
                f'<li><span class="sev sev-{_e(f.get("severity", "info"))}">{_e(f.get("severity", ""))}</span> {_e(_short(f.get("text", ""), 400))}</li>'
                for f in findings
            )
            + "</ul>"
        )
    obs = _observation_groups(row.get("observations") or [])
    if obs:
        shown = obs[:MAX_OBSERVATIONS]
        items = "".join(
            f"<li><code>{_e(what)}</code> = {_e(_short(value, 240))}"
            f' <span class="muted">({_e(_which(what, checks))})</span></li>'
            for what, value, checks in shown
        )
        if len(obs) > MAX_OBSERVATIONS:
            items += f'<li class="muted">… and {len(obs) - MAX_OBSERVATIONS} more in clauses.json</li>'
        parts.append(
            f'<div class="label">{"observed answer" if status == report.UNSPECIFIED_OBSERVED else "observations"}</div><ul>{items}</ul>'
        )
    if status in report.NOT_CHECKED:  # one line: the clause and why it was not checked
        lines = report.not_checked_lines(row) or ["no check of this clause ran"]
        parts[0] = parts[0].replace(f's-{_e(status)}"', f's-{_e(status)} compact"', 1)
        parts[1] = parts[1].removesuffix("</div>") + f'<span class="why">{_e("; ".join(lines))}</span></div>'
        parts.append("</section>")
        return "".join(parts)
    links = []
    for ch in row.get("checks") or []:
        for att in evidence.get(ch.get("check", ""), []):
            links.append(
                f'<a href="{_e(att["href"])}">{_e(att["name"])}</a> <span class="muted">({_e(_check_name(ch["check"]))})</span>'
            )
    if links:
        links = list(dict.fromkeys(links))
        parts.append(
            '<div class="muted">SIP evidence: '
            + " · ".join(links[:MAX_LINKS])
            + (f" · … {len(links) - MAX_LINKS} more" if len(links) > MAX_LINKS else "")
            + "</div>"
        )
    parts.append(_checks_line(row))
    parts.append("</section>")
    return "".join(parts)


_WIDE = ("contract", "clauses.json SHA-256", "faults switched on", "[gate] require", "TLS verification", "target")


def _meta_rows(meta: list[tuple[str, str]]) -> str:
    """Two short fields a row; the long ones (contract, SHA-256, ...) a row of their own."""
    rows: list[str] = []
    pending: list[str] = []
    for k, val in meta:
        cell = f"<th>{_e(k)}</th><td>{_e(str(val))}</td>"
        if k in _WIDE:
            if pending:
                rows.append("".join(pending) + ("<th></th><td></td>" if len(pending) == 1 else ""))
                pending = []
            rows.append(f'<th>{_e(k)}</th><td colspan="3">{_e(str(val))}</td>')
        else:
            pending.append(cell)
            if len(pending) == 2:
                rows.append("".join(pending))
                pending = []
    if pending:
        rows.append(pending[0] + "<th></th><td></td>")
    return "".join(f"<tr>{r}</tr>" for r in rows)


def render(
    reports_dir: Path,
    info: dict[str, Any] | None = None,
    *,
    table_file: str = report.CLAUSES_JSON,
    title: str = "pbxcheck conformance certificate",
) -> str:
    """The certificate for ``reports_dir`` (its clauses.json, failures/ and allure-results/);
    ``table_file`` (relative to it) and ``title`` let `pbxcheck audit` render a client's."""
    reports_dir = Path(reports_dir)
    table_path = reports_dir / table_file
    table = json.loads(table_path.read_text(encoding="utf-8"))
    if info is None:
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((reports_dir / RUN_INFO_JSON).read_text(encoding="utf-8"))
    info = info or {}
    v, sentence = verdict(table)
    counts = table.get("counts") or {}
    files: dict[str, FailureFile] = {}
    folder = reports_dir / report.FAILURES_DIR
    if folder.is_dir():
        for p in sorted(folder.glob("*.txt")):
            files[p.name] = read_failure_file(p)
    evidence = allure_evidence(reports_dir)
    name = info.get("target") or table.get("target") or "target"
    insecure_api = (not info["tls_verify_api"]) if "tls_verify_api" in info else bool(table.get("insecure"))
    tls = "OFF for the API (target insecure = true)" if insecure_api else "on for the API"
    if "tls_verify_sip" in info:
        tls += ", " + ("OFF for SIP/WSS" if not info["tls_verify_sip"] else "on for SIP/WSS")
    meta = [
        ("target", name + (" (the embedded reference central)" if info.get("embedded") else "")),
        *((e["name"], e["url"]) for e in info.get("endpoints") or []),
        ("date", table.get("generated", "")),
        ("contract", f"“{CONTRACT_DOCUMENT}” version {CONTRACT_VERSION}, API {API_VERSION} ({CONTRACT_FILE})"),
        ("pbxcheck", info.get("pbxcheck") or __version__),
        ("profile", info.get("profile") or "?"),
    ]
    # A client audit judges the client's TLS (CL-TLS-*), not ours: the run's TLS line would mislead.
    client_audit = bool(info.get("client_audit"))
    if not client_audit:
        meta.append(("TLS verification", tls))
    if info.get("faults"):
        meta.append(("faults switched on", ", ".join(info["faults"])))
    if table.get("require"):
        meta.append(("[gate] require", ", ".join(table["require"])))
    meta.append(("clauses.json SHA-256", sha256_of(table_path)))
    meta_html = _meta_rows(meta)
    rows = ordered(table)
    chips = "".join(
        f'<a class="chip s-{_e(row.get("status", ""))}" href="#clause-{_e(cid)}" title="{_e(row.get("status", ""))}">{_e(cid)}</a>'
        for cid, row in rows
    )
    body = []
    current = None
    for cid, row in rows:
        status = row.get("status", report.NOT_RUN)
        if status != current:
            current = status
            n = sum(1 for _, r in rows if r.get("status") == status)
            body.append(f'<h2 class="group s-{_e(status)}">{_e(GROUP_TITLES.get(status, status))} ({n})</h2>')
        body.append(_clause_html(cid, row, files, evidence))
    counts_line = ", ".join(f"{counts.get(s, 0)} {s.replace('-', ' ')}" for s in ORDER if counts.get(s, 0))
    notes = []
    if not client_audit and any(r.get("failures") for _, r in rows):
        notes.append(
            "Reproductions read the secrets from the environment: <code>export PBX_SENHA=… PBX_TOKEN=…</code> "
            "(the values in the target file; a check run with the [foreign] token used that one), then paste the curl line."
        )
    if table.get("secret_leaks"):
        notes.append(
            f"<b>SECRET LEAK: {int(table['secret_leaks'])} piece(s) of a secret survived redaction in this folder.</b>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pbxcheck certificate: {_e(name)}: {_e(v)}</title><style>{CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="sub">{_e(name)} against “{_e(CONTRACT_DOCUMENT)}” {_e(CONTRACT_VERSION)} (API {_e(API_VERSION)})</p>
<div id="verdict" class="banner {_BANNER_CLASS[v]}" data-verdict="{_e(v)}"><svg width="32" height="32" viewBox="0 0 32 32" aria-hidden="true"><circle cx="16" cy="16" r="14.5" fill="none" stroke="currentColor" stroke-width="2.5"/>{_ICONS[v]}</svg><span>{_e(sentence)}</span></div>
<div class="counts">{_bar(counts)}<br>{_e(counts_line)}</div>
<div class="chips">{chips}</div>
<table class="meta">{meta_html}</table>
{"".join(f'<p class="note">{n}</p>' for n in notes)}
<main id="clauses">
{"".join(body)}
</main>
<p class="note">Failure files, ladders and pcaps are linked relative to this file: keep reports/ together when copying it. Machine-readable: clauses.json, junit.xml, allure-results/.</p>
</body></html>
"""


def write(reports_dir: Path, info: dict[str, Any] | None = None, redactor: Redactor | None = None) -> Path:
    """Write certificate.html (and run-info.json when ``info`` is given) into ``reports_dir``."""
    reports_dir = Path(reports_dir)
    redactor = redactor or Redactor(())
    if info is not None:
        (reports_dir / RUN_INFO_JSON).write_text(
            redactor.text(json.dumps(info, indent=2, ensure_ascii=False)) + "\n", encoding="utf-8"
        )
    path = reports_dir / CERTIFICATE_HTML
    path.write_text(redactor.text(render(reports_dir, info)), encoding="utf-8")
    return path


def write_for_run(
    reports_dir: Path, target: Any, *, profile: str, faults: Sequence[str], embedded: bool, redactor: Redactor
) -> str:
    """The runner's call, after redaction and before the leak scan: one line to print."""
    if not (Path(reports_dir) / report.CLAUSES_JSON).exists():
        (Path(reports_dir) / CERTIFICATE_HTML).unlink(missing_ok=True)
        return "no clauses.json: no certificate written"
    try:
        path = write(reports_dir, run_info(target, profile=profile, faults=faults, embedded=embedded), redactor)
    except Exception as exc:  # a certificate problem never hides the run's own verdict
        return f"certificate not written: {type(exc).__name__}: {exc}"
    return f"certificate: {path}"


# --- Chromium ------------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_command(binary: str, *args: str, profile_dir: str) -> list[str]:
    cmd = [
        binary,
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--allow-file-access-from-files",
        f"--user-data-dir={profile_dir}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return cmd + list(args)


def run_chromium(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("Chromium not found (Debian package 'chromium')")
    with tempfile.TemporaryDirectory(prefix="pbxcheck-chromium-") as profile:
        return subprocess.run(
            chromium_command(binary, *args, profile_dir=profile),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def print_pdf(html: Path, pdf: Path) -> Path:
    """Print ``html`` to ``pdf`` with headless Chromium; FileNotFoundError without it."""
    pdf = Path(pdf).resolve()
    pdf.unlink(missing_ok=True)
    done = run_chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", Path(html).resolve().as_uri())
    if not pdf.exists() or pdf.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise RuntimeError(f"Chromium did not write {pdf}: {tail[0]}")
    return pdf
