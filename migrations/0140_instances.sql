-- Instances (issue 14): a Postgres + a Redis (+ its workers) holding the event data of the workspaces
-- placed on it. Registered in the hub by the operator (`eventplane instance add`); a workspace whose
-- `instance` is NULL lives on the hub's own servers (the default instance), as every workspace did before.
CREATE TABLE IF NOT EXISTS instances (
    name         text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,39}$' AND name <> 'default'),
    database_url text NOT NULL,                         -- credentials: shown redacted, never logged
    redis_url    text NOT NULL,
    state        text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS instance text REFERENCES instances (name);
CREATE INDEX IF NOT EXISTS workspaces_instance ON workspaces (instance);

-- A workspace being moved between instances (`eventplane workspace move`): the step it has reached, so
-- that running the move again resumes it. NULL source/target: the default instance.
CREATE TABLE IF NOT EXISTS workspace_moves (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    source       text REFERENCES instances (name),
    target       text REFERENCES instances (name),
    step         text CHECK (step IN ('holding', 'routed', 'drained', 'copied', 'released')),  -- the last done
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
