"""JUnit that names its clauses: each testcase carries a ``clause`` property per clause the check is
charged with and ``clause.<ID>`` saying what the check did for it (the per-clause outcome of
``clauses.json``: passed, failed, blocked by ..., not-applicable), and its name starts with the IDs
(``[AUTH-2 AUTH-5] test_x[insert]``), so a CI system's test list reads by clause too."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

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


def name_testcases(path: Path) -> int:
    """Prefix each testcase's name in the JUnit file at ``path`` with its clause IDs (read from its
    ``clause`` properties); the number of testcases renamed. Run once junitxml wrote the file."""
    if not path.is_file():
        return 0
    tree = ET.parse(path)
    renamed = 0
    for case in tree.getroot().iter("testcase"):
        ids = [p.get("value", "") for p in case.iter("property") if p.get("name") == CLAUSE_PROPERTY]
        name = case.get("name", "")
        if ids and not _PREFIXED.match(name):
            case.set("name", f"[{' '.join(ids)}] {name}")
            renamed += 1
    if renamed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return renamed


def unprefixed(name: str) -> str:
    """A testcase name without its clause prefix."""
    return _PREFIXED.sub("", name, count=1)
