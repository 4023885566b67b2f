-- Feature flags and experiments (issue 10): definitions, the config version, sticky assignments, the audit log.
CREATE TABLE feature_flags (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key           text NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,99}$'),
    name          text NOT NULL,
    description   text,
    enabled       boolean NOT NULL DEFAULT false,
    salt          text NOT NULL,
    rollout       numeric(5, 2) NOT NULL DEFAULT 100 CHECK (rollout BETWEEN 0 AND 100),
    rules         jsonb NOT NULL DEFAULT '[]',
    value_type    text NOT NULL DEFAULT 'boolean' CHECK (value_type IN ('boolean', 'string', 'number', 'object')),
    default_value jsonb NOT NULL DEFAULT 'false',
    on_value      jsonb NOT NULL DEFAULT 'true',
    variations    jsonb NOT NULL DEFAULT '[]',          -- the document's "values": [{key, value, weight}]
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, key)
);

CREATE TABLE experiments (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key               text NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,99}$'),
    name              text NOT NULL,
    hypothesis        text,
    status            text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'running', 'stopped')),
    salt              text NOT NULL,
    bucket_version    integer NOT NULL DEFAULT 1 CHECK (bucket_version >= 1),
    allocation        numeric(5, 2) NOT NULL DEFAULT 100 CHECK (allocation BETWEEN 0 AND 100),
    targeting         jsonb NOT NULL DEFAULT '{"match": "all", "conditions": []}',
    variants          jsonb NOT NULL,                   -- [{key, weight}], the first is the control
    conversion_event  text NOT NULL,
    value_property    text,
    namespace_name    text,
    namespace_start   integer,
    namespace_end     integer,
    -- "remote" once weights or allocation changed after exposures: SDKs then ask the edge.
    sticky            text NOT NULL DEFAULT 'local' CHECK (sticky IN ('local', 'remote')),
    started_at        timestamptz,
    stopped_at        timestamptz,
    created_by        uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, key),
    CHECK ((namespace_name IS NULL AND namespace_start IS NULL AND namespace_end IS NULL)
           OR (namespace_name IS NOT NULL AND 0 <= namespace_start AND namespace_start < namespace_end
               AND namespace_end <= 10000))
);

-- The workspace's config document version (the SDK config's ETag), bumped in every change's transaction.
CREATE TABLE flag_config_versions (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    version      bigint NOT NULL
);

-- A unit's first exposure to an experiment at a bucket version, written by the worker from `$exposure`
-- events (first wins).
CREATE TABLE experiment_assignments (
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    experiment_id    uuid NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    bucket_version   integer NOT NULL,
    unit_id          text NOT NULL,
    variant          text NOT NULL,
    first_exposed_at timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, bucket_version, unit_id)
);

-- Every flag and experiment change. Actors are plain ids (no foreign keys): the record outlives the
-- user or key that made it.
CREATE TABLE audit_log (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    actor_user_id uuid,
    actor_key_id  uuid,
    action        text NOT NULL,
    entity_type   text NOT NULL,
    entity_key    text NOT NULL,
    before        jsonb,
    after         jsonb,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, created_at, id);
CREATE INDEX audit_log_entity ON audit_log (workspace_id, entity_type, entity_key, created_at, id);
