-- Card closure (emptied and blocked over the air), transfer to a new phone, deletion with a
-- refund. Shared by both back ends, after the back end's own half (0003_closures.sqlite.sql or
-- 0003_closures.postgres.sql), in the same transaction. Same rules as 0001: Unix milliseconds,
-- integer fen, never edited once applied.

-- One card per city per phone that is not closed: a phone whose card was deleted or moved away
-- may enroll that city again (a new card, a new sign-up); the closed card's row stays.
CREATE UNIQUE INDEX phone_cards_one_open_per_city ON phone_cards (device_id, city) WHERE state <> 'closed';

-- One closure per card, ever (a closed card stays closed; a closure is resumed, never repeated).
-- stage: the closure's state machine (JSON) — the command handed to the phone, awaiting its
-- answer. moved_fen: what the card's verified TACs prove was debited; unconfirmed_fen: debits
-- the card could no longer prove or disprove (handed on to the back office, never moved).
CREATE TABLE card_closures (
    closure_id TEXT PRIMARY KEY,
    card_id TEXT NOT NULL UNIQUE REFERENCES phone_cards (card_id),
    purpose TEXT NOT NULL CHECK (purpose IN ('transfer', 'delete')),
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    stage TEXT NOT NULL,
    moved_fen BIGINT NOT NULL CHECK (moved_fen >= 0),
    unconfirmed_fen BIGINT NOT NULL CHECK (unconfirmed_fen >= 0),
    rounds BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    -- Bumped by every step: writers compare and swap on it.
    version BIGINT NOT NULL
);

-- Every DEBIT FOR PURCHASE a closure handed out (MAC1 with our terminal ID), recorded in doubt
-- before MAC1 leaves, as a typed purchase record (yitong-record's TapRecord, JSON). state:
-- in_doubt, confirmed (TAC and MAC2 verified), recovered (the card's proof or log at a later
-- contact), not_debited (the card's offline counter unchanged under a fresh INITIALIZE),
-- unconfirmed (the card could no longer tell).
CREATE TABLE closure_debits (
    tap_id TEXT PRIMARY KEY,
    closure_id TEXT NOT NULL REFERENCES card_closures (closure_id),
    state TEXT NOT NULL CHECK (state IN ('in_doubt', 'confirmed', 'recovered', 'not_debited', 'unconfirmed')),
    counter_before BIGINT NOT NULL,
    record TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- At most one debit in doubt per closure.
CREATE UNIQUE INDEX closure_debits_one_doubt ON closure_debits (closure_id) WHERE state = 'in_doubt';

-- A transfer's balance waiting for the new phone: the code is a bearer capability handed only to
-- the old phone and kept here as its SHA-256 (hex) only; the first claim binds the new phone, its
-- card and the funded load order.
CREATE TABLE card_transfers (
    code_sha256 TEXT PRIMARY KEY,
    closure_id TEXT NOT NULL UNIQUE REFERENCES card_closures (closure_id),
    from_card_id TEXT NOT NULL REFERENCES phone_cards (card_id),
    from_device_id TEXT NOT NULL,
    city TEXT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen >= 0),
    to_device_id TEXT,
    to_card_id TEXT REFERENCES phone_cards (card_id),
    load_order_id TEXT REFERENCES payment_orders (merchant_order_id),
    created_at_ms BIGINT NOT NULL,
    claimed_at_ms BIGINT
);

-- A balance refund paid back as partial refunds of the card's top-up orders, newest first (what
-- WeChat Pay and Alipay offer: a refund goes back to the payment it refunds).
CREATE TABLE balance_refund_parts (
    refund_id TEXT PRIMARY KEY,
    merchant_order_id TEXT NOT NULL REFERENCES payment_orders (merchant_order_id),
    paid_order_id TEXT NOT NULL UNIQUE REFERENCES payment_orders (merchant_order_id),
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    refunded BIGINT NOT NULL
);
