"""The check layer: the pytest plugin behind ``pbxcheck run`` and what the suites and probes use.

==============  ==================================================================================
module          holds
==============  ==================================================================================
plugin          the pytest hooks (the ``pytest11`` entry point)
session         the per-run state (target, redactor, results, recorded data, watched clients)
clauses         clause bookkeeping: marked clauses, outcomes, blocked / not applicable, the table
checker         ``Checker``, ``ClauseFailure``, ``blocked_by``
failure         the one failure formatter of HTTP and SIP checks; the active redactor
recorder        ``Recorder``: observations, findings, pins
fixtures        the fixtures (``target``, ``api``, ``check``, ...), ``RunTag``, ``ForeignProbe``
profiles        the Hypothesis profiles (``ci``, ``thorough``)
redaction       secrets out of pytest's reports, exceptions, terminal and Allure results
allure_clauses  Allure results split per clause (labels, findings, "blocked by"), the gate's results
junit_clauses   JUnit clause properties, clause-prefixed test names, the gate's testcases
support         HTTP suite helpers (insert, listing, report, click-to-call)
strategies      Hypothesis strategies of the suites
sipkit          the SIP probe kit (import it as ``pbxcheck.checks.sipkit``)
sipsession      ``SipSession``: a SIP probe's channels and phones, failing a clause with its exchange
==============  ==================================================================================
"""

from .checker import Blocked, Checker, ClauseFailure, blocked_by, failed_clauses_of
from .failure import failure_headline, format_failure
from .fixtures import (
    Finding,
    ForeignProbe,
    Observe,
    RunTag,
    is_datetime_text,
    new_client,
    other_loopback,
    target_is_local,
)
from .recorder import Recorder, pin_matches

__all__ = [
    "Blocked",
    "Checker",
    "ClauseFailure",
    "Finding",
    "ForeignProbe",
    "Observe",
    "Recorder",
    "RunTag",
    "blocked_by",
    "failed_clauses_of",
    "failure_headline",
    "format_failure",
    "is_datetime_text",
    "new_client",
    "other_loopback",
    "pin_matches",
    "target_is_local",
]
