-- SQLite's half of 0008: the binary columns — a batch's records packed (yitong-clearing's
-- Batch::pack), and the card shadows' table again with its state packed (Shadow::pack).
ALTER TABLE clearing_batches ADD COLUMN records_packed BLOB;
CREATE TABLE card_shadows_packed (
    issuer_id TEXT NOT NULL,
    card_serial TEXT NOT NULL,
    state TEXT,
    packed BLOB,
    balance_fen BIGINT,
    version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, card_serial),
    CHECK (state IS NOT NULL OR packed IS NOT NULL)
);
