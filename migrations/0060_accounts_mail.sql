-- Issue 11: verified emails, single-use email tokens, the mail outbox, what a session shows its user.
ALTER TABLE users ADD COLUMN IF NOT EXISTS email_verified_at timestamptz;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS last_used_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS client text NOT NULL DEFAULT '';

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
