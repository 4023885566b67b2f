-- Every refresh token a session has replaced, so presenting any of them (a stolen copy) ends the session,
-- not only the one just before the current token.
CREATE TABLE session_refresh_tokens (
    token_hash  text PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_refresh_tokens_session ON session_refresh_tokens (session_id);
INSERT INTO session_refresh_tokens (token_hash, session_id)
    SELECT previous_hash, id FROM sessions WHERE previous_hash IS NOT NULL;
DROP INDEX sessions_previous;
ALTER TABLE sessions DROP COLUMN previous_hash;
