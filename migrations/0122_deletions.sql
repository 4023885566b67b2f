-- A request to delete every stored event of one person (api/deletions.py, workers/deletions.py).
-- `created_at` is also the cut-off: events received before it are deleted, or refused at commit when
-- they were still queued; with `suppress`, that person's later events are refused too.
CREATE TABLE IF NOT EXISTS deletions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   uuid NOT NULL,  -- no foreign key: event data, kept on the workspace's instance
    user_id        text,
    anonymous_id   text,
    suppress       boolean NOT NULL DEFAULT false,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done')),
    rows_deleted   bigint NOT NULL DEFAULT 0,           -- stored events deleted
    events_refused bigint NOT NULL DEFAULT 0,           -- that person's events a worker refused at commit
    actor_user_id  uuid,
    actor_key_id   uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    CONSTRAINT deletions_one_id CHECK ((user_id IS NULL) <> (anonymous_id IS NULL))
);
CREATE INDEX IF NOT EXISTS deletions_workspace ON deletions (workspace_id, created_at, id);
CREATE INDEX IF NOT EXISTS deletions_due ON deletions (created_at) WHERE status <> 'done';
