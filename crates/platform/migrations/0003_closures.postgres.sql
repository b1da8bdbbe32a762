-- PostgreSQL half of migration 3 (SQLite: 0003_closures.sqlite.sql), run before the shared
-- 0003_closures.sql in the same transaction: the constraints that change are dropped and made
-- again in place (the names are PostgreSQL's defaults for 0001/0002's inline constraints).

-- payment_orders: two more kinds (a card transfer's load, a deleted card's balance refund).
ALTER TABLE payment_orders DROP CONSTRAINT payment_orders_kind_check;
ALTER TABLE payment_orders ADD CONSTRAINT payment_orders_kind_check
    CHECK (kind IN ('top_up', 'sign_up_fee', 'transfer', 'balance_refund'));

-- phone_cards: a state; one card per city per phone becomes one card that is not closed (the
-- partial unique index in 0003_closures.sql).
ALTER TABLE phone_cards DROP CONSTRAINT phone_cards_device_id_city_key;
ALTER TABLE phone_cards ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'closing', 'closed'));
