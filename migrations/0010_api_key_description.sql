-- A person's note on what a key is for (the documented key-management flow sends it).
ALTER TABLE api_keys ADD COLUMN description text;
