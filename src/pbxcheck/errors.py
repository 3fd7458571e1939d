"""The exception tree, readable in one glance.

PbxcheckError
├── TargetError          a target file is missing, malformed or incomplete (exit 2)
├── ApiError             talking to the central's HTTP API went wrong
│   ├── TransportError   no answer at all: connect, TLS, timeout
│   └── AnswerError      an answer came back but is not a PHP-style JSON answer
└── SipError             (see pbxcheck.sip.errors for the SIP sub-tree)
"""

from __future__ import annotations


class PbxcheckError(Exception):
    """Base of every error pbxcheck raises on purpose."""


class TargetError(PbxcheckError):
    """A target file is unusable. ``key`` names the offending key (dotted), when there is one."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = path or "target"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")


class ApiError(PbxcheckError):
    """Base for HTTP API failures."""


class TransportError(ApiError):
    """The request got no HTTP answer (connection refused, TLS failure, timeout)."""


class AnswerError(ApiError):
    """The central answered, but the body cannot be read as its JSON, even leniently."""

    def __init__(self, message: str, body: bytes) -> None:
        self.body = body
        super().__init__(message)


class SipError(PbxcheckError):
    """Base for SIP failures; the tree continues in pbxcheck.sip.errors."""
