-- The back office's rows made compact (after the back end's half, 0008_packed_batches.sqlite.sql
-- or .postgres.sql, which adds the binary columns).
--
-- A batch's records are kept with the batch, packed in the gates' binary encoding, instead of a
-- JSON row per record: one row per upload. dispositions: one letter per record, in order —
-- `a` accepted, `d` duplicate, `r` rejected (the reasons are in the batch's answer). first_at,
-- last_at: the earliest and latest of the records' local times (`YYYY-MM-DD HH:MM:SS`), so that
-- a business day reads only the batches that reach into it. Rows of clearing_records from before
-- this migration are moved into their batches when the service opens the database; the table
-- stays, empty.
ALTER TABLE clearing_batches ADD COLUMN dispositions TEXT;
ALTER TABLE clearing_batches ADD COLUMN first_at TEXT;
ALTER TABLE clearing_batches ADD COLUMN last_at TEXT;
CREATE INDEX clearing_batches_last_at ON clearing_batches (last_at);
-- Batches still to be packed (rows from before this migration): found at open without a scan.
CREATE INDEX clearing_batches_unpacked ON clearing_batches (gate, batch_id) WHERE records_packed IS NULL;
DROP INDEX clearing_records_card;
DROP INDEX clearing_records_at;

-- A card's shadow is written packed (`packed`, about 50 bytes a transaction); `state`, its JSON,
-- is kept for shadows written before and read as they are until their card's next write.
INSERT INTO card_shadows_packed (issuer_id, card_serial, state, balance_fen, version, updated_at_ms)
    SELECT issuer_id, card_serial, state, balance_fen, version, updated_at_ms FROM card_shadows;
DROP TABLE card_shadows;
ALTER TABLE card_shadows_packed RENAME TO card_shadows;
