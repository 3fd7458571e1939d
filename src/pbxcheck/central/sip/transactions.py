"""The transaction layer the central's SIP side runs on: the one import of it in this package.

Every part here takes its transactions through the service (``service.SipService`` holds the one
endpoint); when ``sip/aio.py`` replaces ``sip/endpoint.py`` with the same calls, this line changes.
"""

from pbxcheck.sip.endpoint import ClientTransaction, SipEndpoint, SipTimeout, new_call_id

__all__ = ["ClientTransaction", "SipEndpoint", "SipTimeout", "new_call_id"]
