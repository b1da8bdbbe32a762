-- The back office's ingestion: gates' upload batches (one per gate and batch ID: a batch sent
-- again is answered from here), every record received with what the back office made of it
-- (kept for audit, rejected ones with their reason), and each card's shadow (yitong-clearing's
-- Shadow, JSON) with a compare-and-swap version.
CREATE TABLE clearing_batches (
    gate TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    operator_key_id TEXT NOT NULL,
    records BIGINT NOT NULL,
    answer TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (gate, batch_id)
);

CREATE TABLE clearing_records (
    gate TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    tap_id TEXT NOT NULL,
    issuer_id TEXT NOT NULL,
    card_serial TEXT NOT NULL,
    disposition TEXT NOT NULL CHECK (disposition IN ('accepted', 'duplicate', 'rejected')),
    reason TEXT,
    -- The tap's local time, `YYYY-MM-DD HH:MM:SS` (sorts as time): the business day it clears in.
    at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (gate, batch_id, position),
    FOREIGN KEY (gate, batch_id) REFERENCES clearing_batches (gate, batch_id)
);

CREATE INDEX clearing_records_card ON clearing_records (issuer_id, card_serial);
CREATE INDEX clearing_records_at ON clearing_records (at) WHERE disposition = 'accepted';

CREATE TABLE card_shadows (
    issuer_id TEXT NOT NULL,
    card_serial TEXT NOT NULL,
    state TEXT NOT NULL,
    balance_fen BIGINT,
    version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, card_serial)
);
