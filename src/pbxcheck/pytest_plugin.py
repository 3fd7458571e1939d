"""Compatibility only: the check layer moved to :mod:`pbxcheck.checks` (the pytest hooks are
``pbxcheck.checks.plugin``, the ``pytest11`` entry point). Import from ``pbxcheck.checks``."""

from .checks import (  # noqa: F401
    Blocked,
    Checker,
    ClauseFailure,
    ForeignProbe,
    Recorder,
    RunTag,
    blocked_by,
    failed_clauses_of,
    is_datetime_text,
    other_loopback,
    pin_matches,
    target_is_local,
)
