-- Deletion on request reaches a person's copies outside `events` (workers/deletions.py): their refused
-- rows in `dead_letters` and their queued webhook payloads in `webhook_outbox`, each found through an
-- index, and the request counts what it removed of each.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS user_id text;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS anonymous_id text;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS received_at timestamptz;  -- the row's receipt at the edge
CREATE INDEX IF NOT EXISTS dead_letters_user ON dead_letters (workspace_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS dead_letters_anonymous ON dead_letters (workspace_id, anonymous_id)
    WHERE anonymous_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_outbox_user ON webhook_outbox (destination_id, (payload ->> 'user_id'))
    WHERE payload ->> 'user_id' IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_outbox_anonymous ON webhook_outbox (destination_id, (payload ->> 'anonymous_id'))
    WHERE payload ->> 'anonymous_id' IS NOT NULL;
ALTER TABLE deletions ADD COLUMN IF NOT EXISTS dead_letters_deleted bigint NOT NULL DEFAULT 0;
ALTER TABLE deletions ADD COLUMN IF NOT EXISTS webhook_rows_deleted bigint NOT NULL DEFAULT 0;

-- Dead letters kept before this release: the person and receipt from their payload (the queued row as
-- JSON, workers/store.py dump_row). One that is not JSON keeps NULLs (it names no one we can find).
DO $$
DECLARE
    r record;
    doc jsonb;
BEGIN
    FOR r IN SELECT id, payload FROM dead_letters WHERE user_id IS NULL AND anonymous_id IS NULL LOOP
        BEGIN
            doc := replace(convert_from(r.payload, 'UTF8'), '\u0000', '')::jsonb;
            UPDATE dead_letters SET user_id = doc ->> 'user_id', anonymous_id = doc ->> 'anonymous_id',
                received_at = to_timestamp((doc ->> 'received_us')::float8 / 1e6)
            WHERE id = r.id;
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END;
$$;
