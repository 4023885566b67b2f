-- The key a rotation made in this key's place: a key is rotated once, so grace periods cannot chain.
ALTER TABLE api_keys ADD COLUMN replaced_by uuid REFERENCES api_keys (id) ON DELETE SET NULL;
