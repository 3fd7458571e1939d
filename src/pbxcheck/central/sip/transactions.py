"""The transaction layer the central's SIP side runs on: the one import of it in this package.

Every part here takes its transactions through the service (``service.SipService`` holds the one
endpoint): the asyncio runner ``sip/aio.py`` over the core's sans-IO engine (``sip/engine.py``).
"""

from pbxcheck.sip.aio import ClientTransaction, SipEndpoint, SipTimeout, new_call_id

__all__ = ["ClientTransaction", "SipEndpoint", "SipTimeout", "new_call_id"]
