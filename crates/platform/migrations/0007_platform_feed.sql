-- The platform's own loads and debits are fed to the back office from a high-water mark of
-- their last change: the rows changed since are found by this index, not by a scan.
CREATE INDEX ota_loads_updated ON ota_loads (updated_at_ms, tap_id);
CREATE INDEX closure_debits_updated ON closure_debits (updated_at_ms, tap_id);
