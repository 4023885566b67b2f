"""EventPlane's shared core: settings, key format, queue protocol, schema and embedded servers.

The three processes (`ingest`, `workers`, `api`) import this package; it imports none of them.
"""
