-- Phone cards (issuance) and over-the-air loads. Same rules as 0001: one file for SQLite and
-- PostgreSQL, Unix milliseconds, integer fen. Never edit once applied: add a new numbered file.

-- The next serial sequence of each city's issuer: a serial is handed out once, in the
-- transaction that records its card, and never again (a rolled-back issue gives it back).
CREATE TABLE serial_allocations (
    city TEXT PRIMARY KEY,
    next_sequence BIGINT NOT NULL CHECK (next_sequence > 0)
);

-- One card per city per phone: the unique (device_id, city) makes a repeated request find the
-- card instead of issuing (and charging) a second one.
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
    UNIQUE (device_id, city)
);

-- A sign-up fee order and what it was quoted for: the rider pays the quote, and the order can
-- only issue the card of this phone and city.
CREATE TABLE signup_orders (
    merchant_order_id TEXT PRIMARY KEY REFERENCES payment_orders (merchant_order_id),
    device_id TEXT NOT NULL,
    city TEXT NOT NULL,
    fee_fen BIGINT NOT NULL CHECK (fee_fen > 0),
    promotion_id TEXT
);

-- Promotional sign-ups granted, counted with the card in one transaction (the cap is exact).
CREATE TABLE promotion_signups (
    city TEXT NOT NULL,
    promotion_id TEXT NOT NULL,
    signups BIGINT NOT NULL CHECK (signups >= 0),
    PRIMARY KEY (city, promotion_id)
);

-- The next transaction number of each city's over-the-air load host (terminal TOPUP_OVER_THE_AIR).
CREATE TABLE ota_terminals (
    terminal_id TEXT PRIMARY KEY,
    next_transaction_number BIGINT NOT NULL CHECK (next_transaction_number > 0)
);

-- Every MAC2 handed out for a load, as a typed load record (yitong-record's TapRecord, JSON).
-- state: in_doubt (MAC2 out, TAC not seen), confirmed (TAC verified), recovered (found on the
-- card at a later contact), not_loaded (proven by the card's unchanged online counter),
-- unconfirmed (the card could no longer tell: the back office settles it).
CREATE TABLE ota_loads (
    tap_id TEXT PRIMARY KEY,
    merchant_order_id TEXT NOT NULL REFERENCES payment_orders (merchant_order_id),
    card_id TEXT NOT NULL REFERENCES phone_cards (card_id),
    state TEXT NOT NULL CHECK (state IN ('in_doubt', 'confirmed', 'recovered', 'not_loaded', 'unconfirmed')),
    counter_before BIGINT NOT NULL,
    record TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- One payment never loads twice: at most one load per order that is not proven not loaded.
CREATE UNIQUE INDEX ota_loads_one_per_order ON ota_loads (merchant_order_id) WHERE state <> 'not_loaded';
-- A card with a load in doubt gets no second MAC2 until the doubt is settled.
CREATE UNIQUE INDEX ota_loads_one_doubt_per_card ON ota_loads (card_id) WHERE state = 'in_doubt';
