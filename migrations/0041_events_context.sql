-- The SDK's context of an event (library, ip, user agent, locale...), as sent; NULL when none was.
ALTER TABLE events ADD COLUMN IF NOT EXISTS context jsonb;
