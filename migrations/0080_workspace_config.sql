-- Workspace configuration (issue 12): settings, identity-verification public keys, webhook destinations,
-- their outbox (filled in the workers' commit transaction by a trigger) and delivery log.
CREATE TABLE workspace_settings (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    settings     jsonb NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workspace_public_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kid          text NOT NULL,
    alg          text NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    pem          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, kid)
);

CREATE TABLE webhook_destinations (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id         uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
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
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_destinations_workspace ON webhook_destinations (workspace_id);

CREATE TABLE webhook_outbox (
    id             bigserial PRIMARY KEY,
    destination_id uuid NOT NULL REFERENCES webhook_destinations (id) ON DELETE CASCADE,
    received_at    timestamptz NOT NULL,
    event_time     timestamptz NOT NULL,                -- the event's own (skew-corrected) "timestamp"
    message_id     text NOT NULL,
    payload        jsonb NOT NULL
);
CREATE INDEX webhook_outbox_order ON webhook_outbox (destination_id, received_at, event_time, id);

CREATE TABLE webhook_deliveries (
    id             bigserial PRIMARY KEY,
    destination_id uuid NOT NULL REFERENCES webhook_destinations (id) ON DELETE CASCADE,
    attempted_at   timestamptz NOT NULL DEFAULT now(),
    events         integer NOT NULL,
    ok             boolean NOT NULL,
    status_code    integer,
    error          text,
    duration_ms    integer NOT NULL
);
CREATE INDEX webhook_deliveries_destination ON webhook_deliveries (destination_id, id);

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
CREATE TRIGGER events_webhook_outbox AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_outbox_fill();
