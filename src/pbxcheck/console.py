"""The terminal of ``pbxcheck run``: one redacting, recording stream under a rich console, the banner
(what is checked, against which contract, how) and the closing lines (one per failed clause, the
verdict, where the certificate is), so the terminal reads like the certificate's header and banner.

Whatever reaches the terminal goes through :class:`RunStream`: redacted (a secret cannot reach the
screen even if something upstream missed it) and recorded, so the runner's last pass scans exactly
what was shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO, cast

from rich.console import Console
from rich.markup import escape

from . import __version__, report
from .contract import API_VERSION, CLAUSES, CONTRACT_DOCUMENT, CONTRACT_VERSION
from .redact import Redactor

TITLE_CHARS = 60  # a clause's summary, cut to this in its closing line
COUNTED = {
    report.PASSED: "passed",
    report.FAILED: "failed",
    report.UNSPECIFIED_OBSERVED: "unspecified (answer recorded)",
    report.FINDING: "with findings",
}


class RunStream:
    """``out`` behind a redactor, keeping everything written (``shown``) for the leak scan. It has
    what rich and ``print`` use of a text file; ``cast(TextIO, stream)`` where a TextIO is asked."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.redactor = Redactor(())  # until the target (and its secrets) is known
        self.shown: list[str] = []

    def write(self, s: str) -> int:
        clean = self.redactor.text(s)
        self.shown.append(clean)
        self.out.write(clean)
        return len(s)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    def fileno(self) -> int:
        return self.out.fileno()

    @property
    def encoding(self) -> str:  # rich draws box and spinner characters only for a UTF encoding
        return getattr(self.out, "encoding", None) or "utf-8"

    def text(self) -> str:
        return "".join(self.shown)


def run_console(stream: RunStream) -> Console:
    """A terminal gets colours and a live display; a pipe or file (CI logs, tests) plain lines."""
    tty = stream.isatty()
    # soft_wrap: a long line (a failure file's path) stays one line, for the terminal to fold
    return Console(file=cast(TextIO, stream), force_terminal=tty, highlight=False, soft_wrap=True)


# --- Banner ---------------------------------------------------------------------------------------------


def header_line(profile: str) -> str:
    """The run's first line, before anything slow starts (rich markup)."""
    return (
        f"[bold]pbxcheck {escape(__version__)}[/] · contract “{escape(CONTRACT_DOCUMENT)}” "
        f"{escape(CONTRACT_VERSION)} (API {escape(API_VERSION)}) · profile {escape(profile)}"
    )


def _tls(verified: bool) -> str:
    return "TLS verified" if verified else "[bold red]TLS verification OFF[/] (insecure = true)"


def target_lines(info: dict[str, Any], reports_dir: Path) -> list[str]:
    """The target block of the banner (rich markup), from the certificate's ``run_info``: names and
    endpoints only, never a credential."""
    name = escape(str(info["target"]))
    if info.get("embedded"):
        name += (
            " (the embedded reference central"
            + (f"; faults: {escape(' '.join(info['faults']))}" if info.get("faults") else "")
            + ")"
        )
    rows = [("target", f"[bold]{name}[/]")]
    for e in info["endpoints"]:
        url = escape(str(e["url"]))
        if e["name"] == "API":
            url += "  " + _tls(info["tls_verify_api"])
        elif e["name"] == "SIP WSS":
            url += "  " + _tls(info["tls_verify_sip"])
        rows.append((e["name"], url))
    rows.append(("reports", escape(str(reports_dir))))
    return [f"  {label:<11} {value}" for label, value in rows]


# --- Closing lines ----------------------------------------------------------------------------------------


def _short(text: str, limit: int = TITLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failed_clause_lines(table: dict[str, Any]) -> list[str]:
    """One line per failed clause: ID, short title, how many distinct failures (the certificate's
    grouping: a parametrised check failing alike is one), and the failure file to open first."""
    from .certificate import group_failures

    lines = []
    for cid in report.failed_clauses(table):
        row = table["clauses"][cid]
        groups = group_failures(row["failures"])
        files = [f["file"] for g in groups for f in g.failures if f.get("file")]
        n = len(groups)
        where = files[0] if files else _short(groups[0].headline if groups else "", 100)
        title = CLAUSES[cid].summary if cid in CLAUSES else row.get("summary", "")
        lines.append(
            f"[bold red]FAILED[/] {escape(cid):<10} {escape(_short(title))}  "
            f"{n} distinct failure{'s' if n != 1 else ''}  {escape(where)}"
        )
    return lines


def summary_line(table: dict[str, Any]) -> str:
    """The verdict sentence (the certificate's banner) and the clause counts."""
    from .certificate import CONFORMS, verdict

    v, sentence = verdict(table)
    counts = table.get("counts") or {}
    parts = [f"{counts.get(state, 0)} {label}" for state, label in COUNTED.items()]
    parts.append(f"{sum(counts.get(s, 0) for s in report.NOT_CHECKED)} not checked")
    style = "bold green" if v == CONFORMS else "bold red"
    return f"[{style}]{escape(sentence)}[/] · clauses: {', '.join(parts)}"
