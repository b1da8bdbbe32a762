-- Registered phones with their access tokens, and operators' API keys. Same rules as 0001: one
-- file for SQLite and PostgreSQL, Unix milliseconds. Never edit once applied: add a new file.
-- Tokens and keys are random (256 bits) and stored only as their SHA-256, hex: the database
-- never holds one a caller could present.

-- A phone registers once (its device ID); its token is bound to that device.
CREATE TABLE phones (
    phone_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL UNIQUE,
    se_id TEXT NOT NULL,
    maker TEXT NOT NULL,
    model TEXT NOT NULL,
    carrier TEXT,
    token_sha256 TEXT NOT NULL UNIQUE,
    registered_at_ms BIGINT NOT NULL
);

-- An operator's API key, scoped to one city's issuer; revoked keys stay for the audit trail.
CREATE TABLE operator_keys (
    key_id TEXT PRIMARY KEY,
    city TEXT NOT NULL,
    name TEXT NOT NULL,
    key_sha256 TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);

-- A card's history: its top-up orders.
CREATE INDEX payment_orders_card ON payment_orders (card_id);
