"""The embedded reference central: the HTTP side of the contract served from SQLite.

Modules: ``store`` (SQLite), ``fragments`` (pre-rendered statusdiscador records), ``dialer``
(the dialer simulation), ``calls`` (click-to-call seam the SIP side extends), ``records`` (call
records), ``gsm`` (recordings), ``handlers`` + ``app`` (the ASGI apps), ``faults`` (fault switches),
``seed`` (fixtures/seed), ``tls`` (private CA), ``cork`` (one TLS write per response), ``lockout``
(brute-force lockout, API and SIP), ``sockets`` (the SIP sockets), ``server`` (running it),
``process`` (starting one for a test or a run). The SIP side is the package ``sip`` (one module per
collaborator, see ``sip/service.py``); ``server`` plugs it in through ``sip.create_service``.
"""
