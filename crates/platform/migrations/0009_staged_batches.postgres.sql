-- PostgreSQL's half of 0009: an ingest group's batch rows are copied here (COPY … FROM STDIN,
-- binary) under the group's write token before its transaction, which moves them into
-- clearing_batches and deletes them. Unlogged: a row here is never the only copy of anything
-- (a group whose rows were lost in a crash was not answered, and is uploaded again). Rows of a
-- group that never wrote are deleted by the group, or by a sweep once an hour old (staged_at_ms:
-- the server's clock when the row came). The columns are clearing_batches' own, without its key:
-- a batch may be staged by two groups at once.
CREATE UNLOGGED TABLE clearing_batches_staged (
    token BIGINT NOT NULL,
    staged_at_ms BIGINT NOT NULL DEFAULT (CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)),
    LIKE clearing_batches
);
CREATE INDEX clearing_batches_staged_token ON clearing_batches_staged (token);
