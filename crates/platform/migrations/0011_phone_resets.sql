-- An operator resets a phone's registration (a rider who lost the token): the token is replaced
-- by one nobody holds, and a one-time code (its SHA-256 here, until its expiry) lets the same
-- device and SE register again with a new token.
ALTER TABLE phones ADD COLUMN reset_sha256 TEXT;
ALTER TABLE phones ADD COLUMN reset_until_ms BIGINT;
