"""Network drivers for the sans-IO SIP core: bytes over UDP, TCP, WS/WSS, blocking sockets, scapy.

Each driver delivers one complete SIP message at a time with the :class:`~.base.Flow` it came on;
parsing and every SIP rule stay in the core.
"""

from .base import Addr, Flow, MessageHandler

__all__ = ["Addr", "Flow", "MessageHandler"]
