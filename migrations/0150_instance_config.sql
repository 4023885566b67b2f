-- Webhooks and experiment assignments on every instance (docs/scaling.md): a workspace's webhook
-- destinations, their outbox and delivery log live beside its events on the workspace's instance, whose
-- workspaces table is empty, so they refer to no workspace row; the hub keeps the old cascade by trigger.
ALTER TABLE webhook_destinations DROP CONSTRAINT IF EXISTS webhook_destinations_workspace_id_fkey;
-- Set by a move on the source's destinations: that instance's workers no longer deliver them (the target's
-- will, from the copied outbox).
ALTER TABLE webhook_destinations ADD COLUMN IF NOT EXISTS handed_off_at timestamptz;

-- What the workers' assignment statement joins: each experiment's (id, workspace_id, key). Kept from
-- `experiments` by trigger where experiments are (the hub), written by the api and by moves on an
-- instance (eventplane/instance_config.py).
CREATE TABLE IF NOT EXISTS experiment_keys (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    key          text NOT NULL,
    UNIQUE (workspace_id, key)
);
INSERT INTO experiment_keys (id, workspace_id, key) SELECT id, workspace_id, key FROM experiments
ON CONFLICT DO NOTHING;

ALTER TABLE experiment_assignments DROP CONSTRAINT IF EXISTS experiment_assignments_workspace_id_fkey;
ALTER TABLE experiment_assignments DROP CONSTRAINT IF EXISTS experiment_assignments_experiment_id_fkey;
ALTER TABLE experiment_assignments ADD CONSTRAINT experiment_assignments_experiment_id_fkey
    FOREIGN KEY (experiment_id) REFERENCES experiment_keys (id) ON DELETE CASCADE;

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

-- A workspace deleted in the hub takes its (hub-side) webhook destinations with it, as the foreign key did.
CREATE OR REPLACE FUNCTION workspace_webhooks_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM webhook_destinations WHERE workspace_id = OLD.id;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS workspaces_webhooks ON workspaces;
CREATE TRIGGER workspaces_webhooks AFTER DELETE ON workspaces FOR EACH ROW EXECUTE FUNCTION workspace_webhooks_gone();
