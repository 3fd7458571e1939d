"""What the engine short-path tests share: the REGISTER they run and their "time what [status]" scripts."""

from __future__ import annotations

from pbxcheck.sip.message import Request, make_request


def register(transport: str, branch: str) -> Request:
    return make_request(
        "REGISTER",
        "sip:pbx.example",
        from_="<sip:2001@pbx.example>;tag=ft",
        to="<sip:2001@pbx.example>",
        call_id="cid-short",
        cseq=7,
        via=f"SIP/2.0/{transport} 10.0.0.1:5060;branch={branch}",
        contact="<sip:2001@10.0.0.1:5060>",
        headers=[("Expires", "300")],
    )


def steps(script: str) -> list[tuple[float, str, int]]:
    """``"0 recv, 0.5 answer 200"`` -> ``[(0.0, "recv", 0), (0.5, "answer", 200)]``."""
    out = []
    for step in script.split(", "):
        now, what, *status = step.split()
        out.append((float(now), what, int(status[0]) if status else 0))
    return out
