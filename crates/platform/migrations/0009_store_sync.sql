-- SQLite's group commit (`store::durable`): writes commit without syncing, and a barrier — this
-- one row changed and committed with a sync of the WAL — makes every write before it durable
-- before any of them is answered. `barriers` counts them. Unused on PostgreSQL (which groups its
-- own commits).
CREATE TABLE store_sync (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    barriers BIGINT NOT NULL
);
INSERT INTO store_sync (id, barriers) VALUES (1, 0);
