-- The exactly-once ledger becomes a deduplication window (workers/ledger.py, docs/storage.md): partitioned
-- by the UTC day an id was claimed, dropped whole as it ages. The existing ledger is converted in place:
-- an id whose event was received in the last 7 days (the default window) is kept under that day (its
-- earliest, if stored more than once); older ids, and ids whose event is gone, are outside the window.
ALTER TABLE event_ids RENAME TO event_ids_forever;
ALTER INDEX event_ids_pkey RENAME TO event_ids_forever_pkey;
-- PostgreSQL 18 names NOT NULL constraints after their table (event_ids_workspace_id_not_null): free those
-- names, as a fresh install's event_ids has them (before 18 there are no such rows and this does nothing).
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint WHERE conrelid = 'event_ids_forever'::regclass AND contype = 'n' LOOP
        EXECUTE format('ALTER TABLE event_ids_forever RENAME CONSTRAINT %I TO %I',
                       c.conname, 'event_ids_forever_' || substr(c.conname, length('event_ids_') + 1));
    END LOOP;
END $$;

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

CREATE TEMP TABLE ledger_kept ON COMMIT DROP AS
SELECT e.workspace_id, e.message_id, min((e.received_at AT TIME ZONE 'UTC')::date) AS day
FROM events e JOIN event_ids_forever f USING (workspace_id, message_id)
WHERE e.received_at >= (((now() AT TIME ZONE 'UTC')::date - 7)::timestamp AT TIME ZONE 'UTC')
GROUP BY 1, 2;

SELECT ensure_ledger_partitions(
    least((SELECT min(day) FROM ledger_kept), (now() AT TIME ZONE 'UTC')::date - 1),
    greatest((SELECT max(day) FROM ledger_kept), (now() AT TIME ZONE 'UTC')::date + 7));

INSERT INTO event_ids (workspace_id, message_id, day) SELECT workspace_id, message_id, day FROM ledger_kept;
DROP TABLE event_ids_forever;
