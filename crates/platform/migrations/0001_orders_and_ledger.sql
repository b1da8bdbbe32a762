-- Payment orders and the double-entry ledger. One file for SQLite and PostgreSQL: only types and
-- clauses both understand (TEXT, BIGINT, CHECK, ON CONFLICT). Times are Unix milliseconds, money
-- is integer fen. Never edit once applied: add a new numbered file.

CREATE TABLE payment_orders (
    merchant_order_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'sign_up_fee')),
    provider TEXT NOT NULL,
    card_id TEXT,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    state TEXT NOT NULL,
    provider_transaction_id TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    -- Bumped by every transition: writers compare and swap on (state, version).
    version BIGINT NOT NULL
);

CREATE INDEX payment_orders_state ON payment_orders (state, updated_at_ms);

-- Every state an order went through, in order; the audit trail of the state machine.
CREATE TABLE payment_order_transitions (
    merchant_order_id TEXT NOT NULL REFERENCES payment_orders (merchant_order_id),
    version BIGINT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_order_id, version)
);

-- A posting is one balanced money movement; its ID makes it idempotent.
CREATE TABLE ledger_postings (
    posting_id TEXT PRIMARY KEY,
    memo TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);

-- Lines: debits positive, credits negative; the lines of a posting sum to zero.
CREATE TABLE ledger_lines (
    posting_id TEXT NOT NULL REFERENCES ledger_postings (posting_id),
    line_number BIGINT NOT NULL,
    account TEXT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen <> 0),
    PRIMARY KEY (posting_id, line_number)
);

CREATE INDEX ledger_lines_account ON ledger_lines (account);

-- What the service believes each card holds, from the card's own answers (the balance a verified
-- CREDIT FOR LOAD left). The ledger check compares it with the card's liability account.
CREATE TABLE card_balances (
    card_id TEXT PRIMARY KEY,
    balance_fen BIGINT NOT NULL CHECK (balance_fen >= 0),
    updated_at_ms BIGINT NOT NULL
);
