"""The reference central's SIP side, split by collaborator (see ``service.py`` for the map)."""

from .base import SipSettings
from .clicktocall import SipCallEngine
from .service import SipService, create_service

__all__ = ["SipCallEngine", "SipService", "SipSettings", "create_service"]
