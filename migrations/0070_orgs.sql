-- Organizations (issue 12): orgs own workspaces, their plan, members with org roles, and org tokens.
-- Every existing workspace becomes the only workspace of an org of its own (same name and plan, its
-- OWNERs the org's OWNERs), so nothing is lost and nothing changes for its members.
CREATE TABLE orgs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    plan        text NOT NULL DEFAULT 'free',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE org_members (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);

CREATE TABLE org_tokens (
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
CREATE INDEX org_tokens_org ON org_tokens (org_id);

ALTER TABLE workspaces ADD COLUMN org_id uuid REFERENCES orgs (id) ON DELETE CASCADE;
ALTER TABLE workspaces ADD COLUMN public_key text;
ALTER TABLE workspaces ADD COLUMN secret_hash text;
ALTER TABLE workspaces ADD COLUMN secret_generation integer NOT NULL DEFAULT 1;
ALTER TABLE workspaces ADD COLUMN previous_secret_hash text;
ALTER TABLE workspaces ADD COLUMN previous_secret_until timestamptz;

CREATE TEMPORARY TABLE _org_of ON COMMIT DROP AS
    SELECT id AS workspace_id, gen_random_uuid() AS org_id FROM workspaces;
INSERT INTO orgs (id, name, plan, created_at, updated_at)
    SELECT o.org_id, w.name, w.plan, w.created_at, w.updated_at FROM _org_of o JOIN workspaces w ON w.id = o.workspace_id;
UPDATE workspaces w SET org_id = o.org_id, public_key = 'epw_' || replace(gen_random_uuid()::text, '-', '')
    FROM _org_of o WHERE o.workspace_id = w.id;
INSERT INTO org_members (org_id, user_id, role, created_at)
    SELECT w.org_id, m.user_id, 'OWNER', m.created_at
    FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id WHERE m.role = 'OWNER';

ALTER TABLE workspaces ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE workspaces ALTER COLUMN public_key SET NOT NULL;
ALTER TABLE workspaces ADD CONSTRAINT workspaces_public_key_key UNIQUE (public_key);
CREATE INDEX workspaces_org ON workspaces (org_id, created_at, id);

-- An invitation is to a workspace or to an org (one of the two).
ALTER TABLE invitations ADD COLUMN org_id uuid REFERENCES orgs (id) ON DELETE CASCADE;
ALTER TABLE invitations ALTER COLUMN workspace_id DROP NOT NULL;
ALTER TABLE invitations DROP CONSTRAINT invitations_role_check;
ALTER TABLE invitations ADD CONSTRAINT invitations_role_check
    CHECK (role IN ('OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER', 'MEMBER'));
ALTER TABLE invitations ADD CONSTRAINT invitations_target_check CHECK ((workspace_id IS NULL) <> (org_id IS NULL));
CREATE UNIQUE INDEX invitations_org_pending ON invitations (org_id, lower(email)) WHERE accepted_at IS NULL;

-- Org-level changes have no workspace: the audit log names the org.
ALTER TABLE audit_log ADD COLUMN org_id uuid REFERENCES orgs (id) ON DELETE CASCADE;
ALTER TABLE audit_log ALTER COLUMN workspace_id DROP NOT NULL;
CREATE INDEX audit_log_org ON audit_log (org_id, created_at, id);
