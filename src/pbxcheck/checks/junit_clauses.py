"""JUnit that names its clauses: each testcase carries a ``clause`` property per clause the check is
charged with and ``clause.<ID>`` saying what the check did for it (the per-clause outcome of
``clauses.json``: passed, failed, blocked by ..., not-applicable), and its name starts with the IDs
(``[AUTH-2 AUTH-5] test_x[insert]``), so a CI system's test list reads by clause too."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import report

if TYPE_CHECKING:
    from .session import CheckResult

CLAUSE_PROPERTY = "clause"
_PREFIXED = re.compile(r"^\[[A-Z0-9 -]+\] ")


def junit_properties(check: CheckResult) -> list[tuple[str, object]]:
    props: list[tuple[str, object]] = []
    outcomes: list[tuple[str, object]] = []
    for cid in dict.fromkeys([*check.clauses, *check.failed_clauses]):
        entry = report._check_entry(vars(check), cid)  # the clause table's own reading
        said = entry["outcome"]
        if said == report.BLOCKED and entry.get("blocked_by"):
            said = "blocked by " + ", ".join(entry["blocked_by"])
        props.append((CLAUSE_PROPERTY, cid))
        outcomes.append((f"{CLAUSE_PROPERTY}.{cid}", said))
    return props + outcomes


def gate_failures(table: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(clause, message) for each clause the target's ``[gate] require`` failed: a failure no check
    made, which JUnit and Allure get as a result of its own."""
    if table is None:
        return []
    return [
        (cid, str(f["message"]))
        for cid, row in table["clauses"].items()
        for f in row["failures"]
        if f.get("check") is None
    ]


def name_testcases(path: Path, gate: Sequence[tuple[str, str]] = ()) -> int:
    """Prefix each testcase's name in the JUnit file at ``path`` with its clause IDs (read from its
    ``clause`` properties) and add a failed testcase per ``gate`` failure; the number of testcases
    changed. Run once junitxml wrote the file."""
    if not path.is_file():
        return 0
    tree = ET.parse(path)
    changed = 0
    for case in tree.getroot().iter("testcase"):
        ids = [p.get("value", "") for p in case.iter("property") if p.get("name") == CLAUSE_PROPERTY]
        name = case.get("name", "")
        if ids and not _PREFIXED.match(name):
            case.set("name", f"[{' '.join(ids)}] {name}")
            changed += 1
    suite = next(tree.getroot().iter("testsuite"), None)
    for cid, message in gate if suite is not None else ():
        _add_gate_case(suite, cid, message)
        changed += 1
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return changed


def _add_gate_case(suite: Any, cid: str, message: str) -> None:
    case = ET.SubElement(suite, "testcase", classname="pbxcheck.gate", name=f"[{cid}] [gate] require {cid}", time="0")
    props = ET.SubElement(case, "properties")
    for name, value in ((CLAUSE_PROPERTY, cid), (f"{CLAUSE_PROPERTY}.{cid}", "failed")):
        ET.SubElement(props, "property", name=name, value=value)
    ET.SubElement(case, "failure", message=message).text = message
    for counter in ("tests", "failures"):
        suite.set(counter, str(int(suite.get(counter, "0")) + 1))


def unprefixed(name: str) -> str:
    """A testcase name without its clause prefix."""
    return _PREFIXED.sub("", name, count=1)
