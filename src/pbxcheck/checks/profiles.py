"""Hypothesis profiles of the checks: ``ci`` (the default of ``pbxcheck run``) and ``thorough``.

Registered at import time, because hypothesis's own plugin loads ``--hypothesis-profile`` during
pytest_configure and the entry points are imported before that.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

PROFILES = ("ci", "thorough")
PROFILE_ENV = "PBXCHECK_HYPOTHESIS_PROFILE"

_SUPPRESS = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]
# ci does not shrink: against a central every shrink step is a few HTTP calls on a growing campaign,
# and a conformance run needs "this failed, with this example", not the smallest example.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=8,
    stateful_step_count=8,
    database=None,
    print_blob=False,
    suppress_health_check=_SUPPRESS,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
settings.register_profile(
    "thorough", deadline=None, max_examples=200, stateful_step_count=40, database=None, suppress_health_check=_SUPPRESS
)


def validate_profile(name: str) -> str:
    """``name`` if it is one of :data:`PROFILES`; ValueError saying which are known otherwise."""
    if name not in PROFILES:
        raise ValueError(f"hypothesis profile must be one of {', '.join(PROFILES)}, not {name!r}")
    return name


def load_from_environment(config: pytest.Config) -> None:
    """``PBXCHECK_HYPOTHESIS_PROFILE``, unless ``--hypothesis-profile`` was given."""
    profile = os.environ.get(PROFILE_ENV)
    if profile and not config.getoption("hypothesis_profile", None):
        try:
            settings.load_profile(validate_profile(profile))
        except ValueError as exc:
            raise pytest.UsageError(f"{PROFILE_ENV}: {exc}") from None
