"""pbxcheck's pytest plugin (placeholder until the suites land; owned by the suites work)."""
