"""Message -> bytes. Kept apart from the model so that the wire format lives in one place."""

from __future__ import annotations

from collections.abc import Iterable


def serialize(start_line: str, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    """Start line, headers (long names, one per line), a Content-Length that matches ``body``, body.

    Any Content-Length among ``headers`` is dropped: the only correct value is the body's length
    (RFC 3261 18.3; on streams the receiver frames by it). Text is encoded UTF-8 with
    ``surrogateescape`` so that bytes the parser did not understand go back out unchanged.
    """
    lines = [start_line]
    for name, value in headers:
        if name != "Content-Length":
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body
