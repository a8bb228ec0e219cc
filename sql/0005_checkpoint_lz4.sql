-- 0005_checkpoint_lz4.sql - checkpoints (verbatim, delta and full modes) compressed with lz4.
--
-- A checkpoint is one value of the whole state, rewritten on every step of an update. Measured with
-- pgbench on a 4.8 MB state: rewriting it uncompressed out of line takes 25 ms; with lz4 11.5 ms when
-- it compresses (JSON states do: keys, URNs and types repeat) and 27 ms when it does not (lz4 gives
-- up early). pglz is too slow for this (0004), so without lz4 checkpoints stay uncompressed.

DO $$
BEGIN
    EXECUTE 'ALTER TABLE extension_pulumi_state_checkpoints ALTER COLUMN raw SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE extension_pulumi_state_checkpoints ALTER COLUMN raw SET STORAGE EXTENDED';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'lz4 is not available: checkpoints stay uncompressed';
END $$;
