-- EventPlane schema. Applied by `eventplane migrate` (and at `eventplane dev` start); every statement is
-- idempotent, so applying it twice, or to an existing database, changes nothing.

-- Tenants -------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS workspaces (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]{1,50}$'),
    description text,
    plan        text NOT NULL DEFAULT 'free',
    is_active   boolean NOT NULL DEFAULT true,          -- false: archived; keys stop at the edge
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    name          text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower ON users (lower(email));

CREATE TABLE IF NOT EXISTS workspace_members (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, user_id)
);
CREATE INDEX IF NOT EXISTS workspace_members_user ON workspace_members (user_id);

CREATE TABLE IF NOT EXISTS api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    key_hash     text NOT NULL UNIQUE,                  -- sha256 hex of the plaintext; never the key itself
    key_prefix   text NOT NULL,                         -- first characters, for display
    scopes       text[] NOT NULL,
    is_active    boolean NOT NULL DEFAULT true,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_workspace ON api_keys (workspace_id);

-- Events --------------------------------------------------------------------------------------------
-- Partitioned by day of received_at (server time, so partitions made ahead always fit). Client
-- timestamps can be years off, so they are indexed, not partitioned on.
CREATE TABLE IF NOT EXISTS events (
    workspace_id uuid NOT NULL,
    message_id   text NOT NULL,
    event_type   text NOT NULL,
    user_id      text,
    anonymous_id text,
    value        double precision,
    properties   jsonb NOT NULL DEFAULT '{}',
    "timestamp"  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS events_workspace_time ON events (workspace_id, "timestamp");
CREATE INDEX IF NOT EXISTS events_workspace_type_time ON events (workspace_id, event_type, "timestamp");

-- The exactly-once ledger. A unique index on `events` would have to include the partition key, and a
-- client's retry has a new received_at (and a new skew-corrected timestamp), so deduplication lives
-- here, keyed on what a retry keeps: (workspace_id, message_id).
CREATE TABLE IF NOT EXISTS event_ids (
    workspace_id uuid NOT NULL,
    message_id   text NOT NULL,
    PRIMARY KEY (workspace_id, message_id)
);

-- Events Postgres refused, kept with the reason so nothing accepted disappears silently.
CREATE TABLE IF NOT EXISTS dead_letters (
    id           bigserial PRIMARY KEY,
    workspace_id text,
    message_id   text,
    payload      bytea NOT NULL,                        -- the queued row as JSON; bytea because it may hold NUL
    reason       text NOT NULL,
    sqlstate     text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Per-day, per-type counts kept by the workers in the same transaction as the rows (usage reads never
-- scan `events`).
CREATE TABLE IF NOT EXISTS usage_daily (
    workspace_id uuid NOT NULL,
    day          date NOT NULL,
    event_type   text NOT NULL,
    events       bigint NOT NULL,
    PRIMARY KEY (workspace_id, day, event_type)
);

CREATE OR REPLACE FUNCTION ensure_event_partitions(first_day date, last_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    d date := first_day;
    part text;
    created integer := 0;
BEGIN
    -- Workers and `migrate` may call this at once; one at a time avoids a duplicate-table race.
    PERFORM pg_advisory_xact_lock(hashtext('eventplane.ensure_event_partitions'));
    WHILE d <= last_day LOOP
        part := format('events_p%s', to_char(d, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                           part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END;
$$;

-- A job that is run twice records a refused event once.
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_message ON dead_letters (workspace_id, message_id);

-- Management API (api/) -----------------------------------------------------------------------------
-- A login session. The access token (a JWT) names its session, so logout ends it at once; the refresh
-- token is rotated on every use, and presenting the one it replaced (a stolen copy) ends the session.
CREATE TABLE IF NOT EXISTS sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash  text NOT NULL UNIQUE,                 -- sha256 hex of the current refresh token
    previous_hash text,                                 -- the refresh token this one replaced
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_previous ON sessions (previous_hash) WHERE previous_hash IS NOT NULL;

-- A pending invitation; deleted when declined or replaced, kept (accepted_at set) once used.
CREATE TABLE IF NOT EXISTS invitations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        text NOT NULL,
    role         text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER')),
    token_hash   text NOT NULL UNIQUE,                  -- sha256 hex of the token; never the token itself
    invited_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS invitations_pending ON invitations (workspace_id, lower(email))
    WHERE accepted_at IS NULL;
CREATE INDEX IF NOT EXISTS invitations_email ON invitations (lower(email)) WHERE accepted_at IS NULL;
CREATE INDEX IF NOT EXISTS workspace_members_workspace ON workspace_members (workspace_id, created_at, id);
