"""Fault switches of the reference central's SIP side (merged into ``faults.FAULTS``).

Each breaks one SIP clause (or a clause that needs a phone on the line) the way a real central could,
so the SIP probes can prove they go red. Declared here as plain tuples, owned by the SIP side;
``faults.py`` turns them into ``Fault`` entries so ``--fault`` and ``validate()`` know them.
"""

from __future__ import annotations

SIP_FAULTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("register-no-challenge", ("SIP-REG-1",), "REGISTER without credentials is answered 200, no 401 challenge"),
    ("challenge-no-qop", ("SIP-REG-1",), "the 401 challenge has no qop (RFC 2069 digest) and no opaque"),
    ("unknown-ext-404", ("SIP-REG-2",), "an unknown extension is answered 404 instead of the usual 401"),
    ("wrong-password-accepted", ("SIP-REG-2",), "any password gets 200 for an existing extension"),
    ("expires-ignored", ("SIP-REG-3",), "every binding gets 3600 s whatever Expires says; Expires 0 removes nothing"),
    ("nonce-replay-accepted", ("SIP-SEC-1",), "replayed nc, stale nonces and nonces issued to another IP are accepted"),
    ("invite-no-challenge", ("SIP-INV-1",), "INVITE is accepted without a 401 challenge"),
    ("invite-no-183", ("SIP-INV-1",), "INVITE goes 100 -> 200 with no 183 Session Progress"),
    ("bye-not-answered", ("SIP-INV-1",), "BYE gets no answer (the call still ends: record and recording are written)"),
    ("rtp-port-out-of-range", ("SIP-INV-2",), "the SDP answer gives an RTP port above 20000"),
    ("codec-not-offered", ("SIP-INV-2",), "the SDP answer picks G722 (9), which was not offered"),
    (
        "no-port-collision",
        ("SIP-NAT-1",),
        "bindings keyed by extension only: two extensions behind one IP:port never collide",
    ),
    ("ws-open-to-all", ("SIP-WS-1",), "REGISTER over WS/WSS is accepted for extensions without ramal-web"),
    ("c2c-no-ring", ("C2C-2",), "clicktocall answers CHAMADA OK but never INVITEs the origin extension"),
    ("ramais-no-sip", ("RAM-2",), "statusramais does not show calls made over SIP"),
    ("classe5-sip-not-blocked", ("C5-1",), "extensions of a blocked classe5 client still register and call"),
    ("crash-on-torture", ("SIP-SEC-1",), "the SIP side stops answering after the first malformed message"),
)
