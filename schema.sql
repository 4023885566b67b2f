-- EventPlane schema, whole and current: `eventplane migrate` applies it to an empty database. Existing
-- databases are upgraded by migrations/NNNN_*.sql instead, so every change goes in both (a new column at
-- the end of its table); tests/core/test_migrations.py fails when they disagree.

-- Tenants -------------------------------------------------------------------------------------------
-- An organization groups a team and its workspaces; the plan and its limits are the org's (issue 12).
CREATE TABLE IF NOT EXISTS orgs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    plan        text NOT NULL DEFAULT 'free',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Instances (issue 14): a Postgres + a Redis (+ its workers) holding the event data of the workspaces
-- placed on it. Registered in the hub by the operator (`eventplane instance add`); a workspace whose
-- `instance` is NULL lives on the hub's own servers (the default instance).
CREATE TABLE IF NOT EXISTS instances (
    name         text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,39}$' AND name <> 'default'),
    database_url text NOT NULL,                         -- credentials: shown redacted, never logged
    redis_url    text NOT NULL,
    state        text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS workspaces (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]{1,50}$'),
    description text,
    plan        text NOT NULL DEFAULT 'free',
    is_active   boolean NOT NULL DEFAULT true,          -- false: archived; keys stop at the edge
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    public_key  text NOT NULL UNIQUE,                   -- the workspace's public identifier (`key`)
    secret_hash text,                                   -- sha256 hex of its secret (none until one is made)
    secret_generation     integer NOT NULL DEFAULT 1,   -- access tokens name it; a rotation ends theirs
    previous_secret_hash  text,                         -- the rotated-out secret, usable until:
    previous_secret_until timestamptz,
    instance    text REFERENCES instances (name)        -- where its events live; NULL: the hub's own servers
);
CREATE INDEX IF NOT EXISTS workspaces_org ON workspaces (org_id, created_at, id);
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

CREATE TABLE IF NOT EXISTS users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    name          text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    email_verified_at timestamptz
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

CREATE TABLE IF NOT EXISTS org_members (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS org_members_user ON org_members (user_id);

-- Long-lived org tokens for automation; only their SHA-256 is stored.
CREATE TABLE IF NOT EXISTS org_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    token_prefix text NOT NULL,
    scopes       text[] NOT NULL,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS org_tokens_org ON org_tokens (org_id);

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
    revoked_at   timestamptz,
    description  text,                                  -- a person's note on what the key is for
    replaced_by  uuid REFERENCES api_keys (id) ON DELETE SET NULL  -- the key a rotation made in its place
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
    received_at  timestamptz NOT NULL,
    context      jsonb                                  -- the SDK's context (library, ip, locale...), as sent
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS events_workspace_time ON events (workspace_id, "timestamp");
CREATE INDEX IF NOT EXISTS events_workspace_type_time ON events (workspace_id, event_type, "timestamp");
-- The event explorer's user filters (migrations/0090).
CREATE INDEX IF NOT EXISTS events_workspace_user_time ON events (workspace_id, user_id, "timestamp")
    WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_workspace_anonymous_time ON events (workspace_id, anonymous_id, "timestamp")
    WHERE anonymous_id IS NOT NULL;
-- Retention's per-workspace deletes (migrations/0121, workers/retention.py).
CREATE INDEX IF NOT EXISTS events_workspace_received ON events (workspace_id, received_at);

-- The exactly-once ledger, kept for a deduplication window (workers/ledger.py, docs/storage.md). A
-- unique index on `events` would have to include the partition key, and a client's retry has a new
-- received_at, so deduplication lives here, keyed on what a retry keeps: (workspace_id, message_id).
-- Partitioned by `day`, the UTC day of the commit that claimed the id; a partition older than the
-- window is dropped whole. Each partition's primary key holds an id once per day; a claim looks the id
-- up in the window's other partitions first, and `event_ids_claim_day` keeps commits of adjacent days
-- from running at once, so two copies racing across midnight cannot both be claimed.
CREATE TABLE IF NOT EXISTS event_ids (
    workspace_id uuid NOT NULL,
    message_id   text NOT NULL,
    day          date NOT NULL,
    PRIMARY KEY (workspace_id, message_id, day)
) PARTITION BY RANGE (day);

-- Holds no rows: commits lock it, in ROW EXCLUSIVE mode on even days and SHARE mode on odd ones. Each
-- mode admits itself and excludes the other, so the commits of one day run together and a commit of the
-- next day waits until those of the day before have ended (and then sees what they claimed).
CREATE TABLE IF NOT EXISTS event_ids_day_guard ();

CREATE OR REPLACE FUNCTION event_ids_claim_day(claim_day date)
RETURNS date LANGUAGE plpgsql AS $$
BEGIN
    -- The day of the calling transaction (the database's clock, shared by every worker), or the one given.
    claim_day := coalesce(claim_day, (now() AT TIME ZONE 'UTC')::date);
    IF (claim_day - DATE '2000-01-01') % 2 = 0 THEN
        LOCK TABLE event_ids_day_guard IN ROW EXCLUSIVE MODE;
    ELSE
        LOCK TABLE event_ids_day_guard IN SHARE MODE;
    END IF;
    RETURN claim_day;
END;
$$;

CREATE OR REPLACE FUNCTION ensure_ledger_partitions(first_day date, last_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    d date := first_day;
    part text;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('eventplane.ensure_ledger_partitions'));
    WHILE d <= last_day LOOP
        part := format('event_ids_p%s', to_char(d, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF event_ids FOR VALUES FROM (%L) TO (%L)', part, d, d + 1);
            created := created + 1;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END;
$$;

-- Events Postgres refused, kept with the reason so nothing accepted disappears silently.
CREATE TABLE IF NOT EXISTS dead_letters (
    id           bigserial PRIMARY KEY,
    workspace_id text,
    message_id   text,
    payload      bytea NOT NULL,                        -- the queued row as JSON; bytea because it may hold NUL
    reason       text NOT NULL,
    sqlstate     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    user_id      text,                                  -- the row's person, for deletion on request
    anonymous_id text,
    received_at  timestamptz                            -- the row's receipt at the edge
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

-- Events SDKs reported they dropped before sending (client reports), folded in from Redis by a worker.
CREATE TABLE IF NOT EXISTS client_drops_daily (
    workspace_id uuid NOT NULL,
    day          date NOT NULL,
    reason       text NOT NULL,
    dropped      bigint NOT NULL,
    PRIMARY KEY (workspace_id, day, reason)
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
CREATE INDEX IF NOT EXISTS dead_letters_user ON dead_letters (workspace_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS dead_letters_anonymous ON dead_letters (workspace_id, anonymous_id)
    WHERE anonymous_id IS NOT NULL;

-- Management API (api/) -----------------------------------------------------------------------------
-- A login session. The access token (a JWT) names its session, so logout ends it at once; the refresh
-- token is rotated on every use, and presenting any one it replaced (a stolen copy) ends the session.
-- A session ends at created_at + EVENTPLANE_SESSION_MAX_AGE whatever its refreshes.
CREATE TABLE IF NOT EXISTS sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash  text NOT NULL UNIQUE,                 -- sha256 hex of the current refresh token
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    client        text NOT NULL DEFAULT ''           -- the User-Agent that logged in
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);

-- Every refresh token a session has replaced (sha256 hex): presenting one again ends the session.
CREATE TABLE IF NOT EXISTS session_refresh_tokens (
    token_hash  text PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS session_refresh_tokens_session ON session_refresh_tokens (session_id);

-- A pending invitation; deleted when declined or replaced, kept (accepted_at set) once used.
CREATE TABLE IF NOT EXISTS invitations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    email        text NOT NULL,
    role         text NOT NULL,
    token_hash   text NOT NULL UNIQUE,                  -- sha256 hex of the token; never the token itself
    invited_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    org_id       uuid REFERENCES orgs (id) ON DELETE CASCADE,  -- an invitation is to a workspace or to an org
    CONSTRAINT invitations_role_check CHECK (role IN ('OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER', 'MEMBER')),
    CONSTRAINT invitations_target_check CHECK ((workspace_id IS NULL) <> (org_id IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS invitations_org_pending ON invitations (org_id, lower(email))
    WHERE accepted_at IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS invitations_pending ON invitations (workspace_id, lower(email))
    WHERE accepted_at IS NULL;
CREATE INDEX IF NOT EXISTS invitations_email ON invitations (lower(email)) WHERE accepted_at IS NULL;
CREATE INDEX IF NOT EXISTS workspace_members_workspace ON workspace_members (workspace_id, created_at, id);

-- Feature flags and experiments (issue 10) ----------------------------------------------------------
-- A flag or experiment key is a slug, unique in its workspace. `salt` (12 random hex, made at creation)
-- seeds bucketing, so equal keys in two workspaces or a re-created key never share buckets.
CREATE TABLE IF NOT EXISTS feature_flags (
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

CREATE TABLE IF NOT EXISTS experiments (
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
CREATE TABLE IF NOT EXISTS flag_config_versions (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    version      bigint NOT NULL
);

-- What the workers' assignment statement joins: each experiment's (id, workspace_id, key), on every
-- instance. Kept from `experiments` by trigger where experiments are (the hub), written by the api and by
-- moves on an instance (eventplane/instance_config.py).
CREATE TABLE IF NOT EXISTS experiment_keys (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    key          text NOT NULL,
    UNIQUE (workspace_id, key)
);

CREATE OR REPLACE FUNCTION experiment_keys_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM experiment_keys WHERE id = OLD.id;  -- and, by cascade, its assignments
        RETURN NULL;
    END IF;
    INSERT INTO experiment_keys (id, workspace_id, key) VALUES (NEW.id, NEW.workspace_id, NEW.key)
    ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id, key = excluded.key;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS experiments_keys ON experiments;
CREATE TRIGGER experiments_keys AFTER INSERT OR UPDATE OF workspace_id, key OR DELETE ON experiments
    FOR EACH ROW EXECUTE FUNCTION experiment_keys_follow();

-- A unit's first exposure to an experiment at a bucket version, written by the worker from `$exposure`
-- events (first wins). Kept beside the events on the workspace's instance: no foreign key to workspaces.
CREATE TABLE IF NOT EXISTS experiment_assignments (
    workspace_id     uuid NOT NULL,
    experiment_id    uuid NOT NULL REFERENCES experiment_keys (id) ON DELETE CASCADE,
    bucket_version   integer NOT NULL,
    unit_id          text NOT NULL,
    variant          text NOT NULL,
    first_exposed_at timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, bucket_version, unit_id)
);

-- Every flag and experiment change. Actors are plain ids (no foreign keys): the record outlives the
-- user or key that made it.
CREATE TABLE IF NOT EXISTS audit_log (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid REFERENCES workspaces (id) ON DELETE CASCADE,  -- or none, for an org-level change
    actor_user_id uuid,
    actor_key_id  uuid,
    action        text NOT NULL,
    entity_type   text NOT NULL,
    entity_key    text NOT NULL,
    before        jsonb,
    after         jsonb,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    org_id        uuid REFERENCES orgs (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS audit_log_org ON audit_log (org_id, created_at, id);
CREATE INDEX IF NOT EXISTS audit_log_workspace ON audit_log (workspace_id, created_at, id);
CREATE INDEX IF NOT EXISTS audit_log_entity ON audit_log (workspace_id, entity_type, entity_key, created_at, id);

-- Workspace configuration (issue 12) ------------------------------------------------------------
--: settings, identity-verification public keys, webhook destinations,
-- their outbox (filled in the workers' commit transaction by a trigger) and delivery log.
CREATE TABLE IF NOT EXISTS workspace_settings (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    settings     jsonb NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS workspace_public_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kid          text NOT NULL,
    alg          text NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    pem          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, kid)
);

CREATE TABLE IF NOT EXISTS webhook_destinations (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id         uuid NOT NULL,  -- no foreign key: kept on the workspace's instance (a trigger cascades)
    url                  text NOT NULL,
    event_types          text[],
    enabled              boolean NOT NULL DEFAULT true,
    signing_secret       text NOT NULL,
    consecutive_failures integer NOT NULL DEFAULT 0,
    failures_total       bigint NOT NULL DEFAULT 0,
    delivered_total      bigint NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    paused_at            timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    handed_off_at        timestamptz  -- set by a move on the source: its workers no longer deliver it
);
CREATE INDEX IF NOT EXISTS webhook_destinations_workspace ON webhook_destinations (workspace_id);

CREATE TABLE IF NOT EXISTS webhook_outbox (
    id             bigserial PRIMARY KEY,
    destination_id uuid NOT NULL REFERENCES webhook_destinations (id) ON DELETE CASCADE,
    received_at    timestamptz NOT NULL,
    event_time     timestamptz NOT NULL,                -- the event's own (skew-corrected) "timestamp"
    message_id     text NOT NULL,
    payload        jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_outbox_order ON webhook_outbox (destination_id, received_at, event_time, id);
-- A person's queued payloads, for deletion on request (workers/deletions.py).
CREATE INDEX IF NOT EXISTS webhook_outbox_user ON webhook_outbox (destination_id, (payload ->> 'user_id'))
    WHERE payload ->> 'user_id' IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_outbox_anonymous ON webhook_outbox (destination_id, (payload ->> 'anonymous_id'))
    WHERE payload ->> 'anonymous_id' IS NOT NULL;

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id             bigserial PRIMARY KEY,
    destination_id uuid NOT NULL REFERENCES webhook_destinations (id) ON DELETE CASCADE,
    attempted_at   timestamptz NOT NULL DEFAULT now(),
    events         integer NOT NULL,
    ok             boolean NOT NULL,
    status_code    integer,
    error          text,
    duration_ms    integer NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_destination ON webhook_deliveries (destination_id, id);

CREATE OR REPLACE FUNCTION webhook_outbox_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Costs one index probe per commit when no workspace has an active destination.
    IF NOT EXISTS (SELECT 1 FROM webhook_destinations WHERE enabled AND paused_at IS NULL) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_outbox (destination_id, received_at, event_time, message_id, payload)
    SELECT d.id, n.received_at, n."timestamp", n.message_id,
           jsonb_build_object('message_id', n.message_id, 'event_type', n.event_type, 'user_id', n.user_id,
                              'anonymous_id', n.anonymous_id, 'value', n.value, 'properties', n.properties,
                              'timestamp', n."timestamp", 'received_at', n.received_at, 'context', n.context)
    FROM new_events n
    JOIN webhook_destinations d ON d.workspace_id = n.workspace_id AND d.enabled AND d.paused_at IS NULL
         AND (d.event_types IS NULL OR n.event_type = ANY (d.event_types));
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS events_webhook_outbox ON events;
CREATE TRIGGER events_webhook_outbox AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_outbox_fill();

-- A workspace deleted in the hub takes its (hub-side) webhook destinations with it.
CREATE OR REPLACE FUNCTION workspace_webhooks_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM webhook_destinations WHERE workspace_id = OLD.id;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS workspaces_webhooks ON workspaces;
CREATE TRIGGER workspaces_webhooks AFTER DELETE ON workspaces FOR EACH ROW EXECUTE FUNCTION workspace_webhooks_gone();
-- Accounts and mail (issue 11) ----------------------------------------------------------------------

-- A link sent by email (verify an address, reset a password, confirm a new address); single use.
CREATE TABLE IF NOT EXISTS email_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('verify', 'reset', 'email_change')),
    email       text NOT NULL,                          -- the address the link was sent to
    token_hash  text NOT NULL UNIQUE,                   -- sha256 hex of the token; never the token itself
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX IF NOT EXISTS email_tokens_user ON email_tokens (user_id, purpose);

-- Mail to send, written in the transaction of the change that causes it; a worker delivers it.
CREATE TABLE IF NOT EXISTS mail_outbox (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- also the Message-ID's left part
    recipient       text NOT NULL,
    subject         text NOT NULL,
    text_body       text NOT NULL,
    html_body       text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz
);
CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Storage (issue 15) -------------------------------------------------------------------------------
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
    dead_letters_deleted bigint NOT NULL DEFAULT 0,     -- that person's rows deleted from dead_letters
    webhook_rows_deleted bigint NOT NULL DEFAULT 0,     -- that person's queued webhook payloads deleted
    CONSTRAINT deletions_one_id CHECK ((user_id IS NULL) <> (anonymous_id IS NULL))
);
CREATE INDEX IF NOT EXISTS deletions_workspace ON deletions (workspace_id, created_at, id);
CREATE INDEX IF NOT EXISTS deletions_due ON deletions (created_at) WHERE status <> 'done';
