-- Retention deletes a workspace's events received before its cut-off (workers/retention.py), a bounded
-- batch at a time; this index finds them without reading other workspaces' rows. Building it locks
-- `events` against writes for as long as it takes (partitioned tables cannot index CONCURRENTLY).
CREATE INDEX IF NOT EXISTS events_workspace_received ON events (workspace_id, received_at);
