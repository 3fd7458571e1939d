"""Pieces of `pbxcheck load` that need neither Locust nor gevent (unit-testable, importable anywhere).

- :mod:`.schedule`: the open model's intended send times (a linear ramp, then a constant rate).
- :mod:`.recorder`: latencies in an HDR histogram, a per-second timeline, the generator's lateness,
  acknowledged idcrms; snapshots that a Locust worker ships to its master and the master merges.
- :mod:`.result`: ``<scenario>.result.json``, thresholds, baseline comparison.
- :mod:`.png`: a tiny PNG writer for the throughput/latency plot (no plotting library).
"""
