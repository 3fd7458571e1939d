"""pbxcheck: conformance and load-test harness for a cloud PBX's integration API (HTTP + SIP)."""

__version__ = "0.1.0"
