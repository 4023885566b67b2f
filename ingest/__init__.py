"""The edge: authenticates, validates and enqueues tracking events. Never writes to Postgres."""
