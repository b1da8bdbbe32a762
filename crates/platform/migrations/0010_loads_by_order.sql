-- A load is found by its order whatever its state (a card's history, `Store::ota_loads`): the
-- unique index on the order covers only the live loads, so those reads scanned every load.
CREATE INDEX ota_loads_order ON ota_loads (merchant_order_id);
