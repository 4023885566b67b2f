"""arq workers: take queued event batches and store them in Postgres exactly once."""
