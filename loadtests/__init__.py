"""Benchmarks (`make bench`) and load tests (`make loadtest`) of the ingestion path; see README.md here."""
