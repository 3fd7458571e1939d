"""``pbxcheck audit``: a client integration judged against the client-side clauses (CL-* in CLAUSES.md).

The reference central runs in this process with its HTTP apps wrapped by a ``recorder`` (every
request on the HTTPS and the plain-HTTP port, raw) and, in the error phase, answering some calls
itself (``chaos``). ``phases`` runs the vendor's command three ways (normal; against an ``impostor``
whose certificate API_CA did not sign; chaos), ``env`` hands it the API_* variables, the judges
(``judge_transport``, ``judge_requests``, ``judge_behaviour``) turn what was recorded into one
``verdicts.ClauseVerdict`` per clause, and ``report`` writes client-clauses.json, the evidence and
client-certificate.html. ``cli`` is the typer command.
"""
