-- The event explorer filters by user and by anonymous id (GET .../events?user_id=, ?anonymous_id=), newest
-- first; without these it would walk every event of the workspace to find one user's.
CREATE INDEX IF NOT EXISTS events_workspace_user_time ON events (workspace_id, user_id, "timestamp")
    WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_workspace_anonymous_time ON events (workspace_id, anonymous_id, "timestamp")
    WHERE anonymous_id IS NOT NULL;
