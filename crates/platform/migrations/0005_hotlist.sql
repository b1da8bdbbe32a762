-- The back office's hotlist: every change (a card added or removed, why, by whom, when), in
-- version order. The list is the replay of its changes; rows are never updated or deleted.
CREATE TABLE hotlist_changes (
    version BIGINT PRIMARY KEY CHECK (version > 0),
    issuer_id TEXT NOT NULL,
    card_serial TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('added', 'removed')),
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    recorded_at_ms BIGINT NOT NULL
);
