"""Fixtures for the SIP side's integration tests (helpers in ``sip_harness``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sip_harness import TEST_SETTINGS, SipCentral, running_central


@pytest.fixture(scope="module")
def sip_central() -> Iterator[SipCentral]:
    """A healthy central shared by a module's tests, which must not depend on their order."""
    with running_central(settings=TEST_SETTINGS) as c:
        yield c
