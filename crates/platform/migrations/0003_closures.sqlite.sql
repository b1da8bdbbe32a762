-- SQLite half of migration 3 (PostgreSQL: 0003_closures.postgres.sql), run before the shared
-- 0003_closures.sql in the same transaction. SQLite cannot drop a constraint, so the two tables
-- whose constraints change are copied, dropped and created again (the rows keep their values).
-- Foreign keys stay on: deferred, the children's references count as broken while a parent table
-- is dropped and as whole again once its rows are back, before the commit checks them.
PRAGMA defer_foreign_keys = ON;

-- payment_orders: two more kinds (a card transfer's load, a deleted card's balance refund).
CREATE TABLE payment_orders_0002 AS SELECT * FROM payment_orders;
DROP TABLE payment_orders;
CREATE TABLE payment_orders (
    merchant_order_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'sign_up_fee', 'transfer', 'balance_refund')),
    provider TEXT NOT NULL,
    card_id TEXT,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    state TEXT NOT NULL,
    provider_transaction_id TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    version BIGINT NOT NULL
);
INSERT INTO payment_orders (merchant_order_id, kind, provider, card_id, amount_fen, state, provider_transaction_id,
                            created_at_ms, updated_at_ms, version)
    SELECT merchant_order_id, kind, provider, card_id, amount_fen, state, provider_transaction_id, created_at_ms,
           updated_at_ms, version FROM payment_orders_0002;
DROP TABLE payment_orders_0002;
CREATE INDEX payment_orders_state ON payment_orders (state, updated_at_ms);

-- phone_cards: a state; one card per city per phone becomes one card that is not closed (the
-- partial unique index in 0003_closures.sql).
CREATE TABLE phone_cards_0002 AS SELECT * FROM phone_cards;
DROP TABLE phone_cards;
CREATE TABLE phone_cards (
    card_id TEXT PRIMARY KEY,
    city TEXT NOT NULL,
    device_id TEXT NOT NULL,
    se_id TEXT NOT NULL,
    maker TEXT NOT NULL,
    model TEXT NOT NULL,
    carrier TEXT,
    key_version BIGINT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    fee_fen BIGINT NOT NULL CHECK (fee_fen >= 0),
    promotion_id TEXT,
    fee_order_id TEXT REFERENCES payment_orders (merchant_order_id),
    issued_at_ms BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'closing', 'closed'))
);
INSERT INTO phone_cards (card_id, city, device_id, se_id, maker, model, carrier, key_version, valid_from, valid_to,
                         fee_fen, promotion_id, fee_order_id, issued_at_ms)
    SELECT card_id, city, device_id, se_id, maker, model, carrier, key_version, valid_from, valid_to, fee_fen,
           promotion_id, fee_order_id, issued_at_ms FROM phone_cards_0002;
DROP TABLE phone_cards_0002;
