-- Card shadows are written in the packed form's second version (`YTS2`, about 32 bytes a
-- transaction: yitong-clearing's Shadow::pack); the first, `YTS1`, is still read. No table
-- changes, and none is named (on SQLite the back office's tables may be in their own file): this
-- migration is here so that a binary from before, which reads only `YTS1`, refuses the database
-- at its opening (a migration it does not know) instead of failing on every card written since.
SELECT 1;
