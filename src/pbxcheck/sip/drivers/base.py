"""What every driver shares: the core's :class:`~pbxcheck.sip.flow.Flow` and handler signature.

They live in ``pbxcheck.sip.flow`` (the core owns them: the engine and the log key on flows); this
module re-exports them so drivers and older imports keep working.
"""

from pbxcheck.sip.flow import TRANSPORTS, Addr, Flow, MessageHandler

__all__ = ["TRANSPORTS", "Addr", "Flow", "MessageHandler"]
