-- Events SDKs reported they dropped before sending, per workspace, UTC day and reason (client reports).
CREATE TABLE IF NOT EXISTS client_drops_daily (
    workspace_id uuid NOT NULL,
    day          date NOT NULL,
    reason       text NOT NULL,
    dropped      bigint NOT NULL,
    PRIMARY KEY (workspace_id, day, reason)
);
